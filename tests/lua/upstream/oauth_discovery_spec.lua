-- The pure parts of the MCP authorization discovery (upstream/oauth_discovery.lua): the
-- canonical resource URI, WWW-Authenticate parsing, the well-known URL orders of RFC 9728
-- and RFC 8414, and the origin a 2025-03-26 server's issuer is compared with. (The fetches
-- are exercised end to end: tests/e2e/oauth.test.mjs and the conformance client suite.)
local d = require "smg.upstream.oauth_discovery"

describe("oauth discovery", function()
  it("canonicalizes resource URIs", function()
    assert.are.equal("https://example.com/mcp", d.canonical("HTTPS://Example.COM:443/mcp/"))
    assert.are.equal("http://example.com:8080/a", d.canonical("http://example.com:8080/a?x=1#f"))
    assert.is_nil(d.canonical("ftp://example.com/"))
  end)

  it("parses Bearer challenges, quoted and escaped, and stops at another scheme", function()
    local c = d.challenge('Basic realm="x", Bearer error="insufficient_scope", scope="a b", '
      .. 'resource_metadata="https://e.example/.well-known/oauth-protected-resource", error_description="say \\"no\\""')
    assert.are.equal("insufficient_scope", c.error)
    assert.are.equal("a b", c.scope)
    assert.are.equal('say "no"', c.error_description)
    assert.is_nil(d.challenge("Basic realm=x"))
    assert.is_nil(d.challenge(nil))
  end)

  it("orders the well-known URLs as the spec asks", function()
    assert.are.same({ "https://e.example/.well-known/oauth-protected-resource/mcp",
      "https://e.example/.well-known/oauth-protected-resource" }, d.prm_urls("https://e.example/mcp/"))
    assert.are.same({ "https://e.example/.well-known/oauth-authorization-server/t",
      "https://e.example/.well-known/openid-configuration/t", "https://e.example/t/.well-known/openid-configuration" },
      d.as_urls("https://e.example/t"))
    assert.are.same({ "https://e.example/.well-known/oauth-authorization-server",
      "https://e.example/.well-known/openid-configuration" }, d.as_urls("https://e.example"))
  end)

  it("compares a 2025-03-26 server's issuer with its normalized origin", function()
    assert.are.equal("https://example.com", d.issuer_origin("https://u:p@Example.COM:443/mcp"))
    assert.are.equal("http://127.0.0.1:8080", d.issuer_origin("http://127.0.0.1:8080/mcp"))
    assert.is_nil(d.issuer_origin("not a url"))
  end)
end)
