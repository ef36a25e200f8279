-- The jwt provider's verification against tokens signed with the openssl CLI (standing in
-- for an authorization server): RS256 and ES256, and each claim check.
local plugins = require "smg.plugins"
local smg = require "smg"

local dir = os.tmpname()
os.remove(dir)
os.execute("mkdir -p " .. dir)

local function sh(cmd)
  local p = assert(io.popen(cmd .. " 2>/dev/null"))
  local out = p:read("*a")
  p:close()
  return out
end

local function file(name, data)
  local f = assert(io.open(dir .. "/" .. name, "wb"))
  f:write(data)
  f:close()
  return dir .. "/" .. name
end

-- Keys, and their public halves as JWKs (components from `openssl pkey -text`).
sh(("openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out %s/rsa.pem"):format(dir))
sh(("openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out %s/ec.pem"):format(dir))

local function hex_field(text, name)
  local block = text:match(name .. ":%s*\n(.-)\n%S") or text:match(name .. ":%s*\n(.*)$")
  return (block:gsub("[%s:]", ""))
end
local function unhex(h) return (h:gsub("%x%x", function(x) return string.char(tonumber(x, 16)) end)) end
local function strip0(b) return (b:gsub("^%z+", "")) end

local rsa_text = sh(("openssl pkey -in %s/rsa.pem -noout -text"):format(dir))
local rsa_jwk = { kty = "RSA", kid = "r1", n = smg.crypto.b64url_encode(strip0(unhex(hex_field(rsa_text, "modulus")))),
  e = smg.crypto.b64url_encode("\1\0\1") }
local ec_text = sh(("openssl pkey -in %s/ec.pem -noout -text"):format(dir))
local pub = unhex(hex_field(ec_text, "pub"))
local ec_jwk = { kty = "EC", crv = "P-256", kid = "e1", x = smg.crypto.b64url_encode(pub:sub(2, 33)),
  y = smg.crypto.b64url_encode(pub:sub(34, 65)) }
local jwks = file("jwks.json", smg.json.encode({ keys = { rsa_jwk, ec_jwk } }))

-- DER ECDSA signature -> JWS r || s.
local function der_to_raw(der)
  local pos = 3
  local function int()
    local len = der:byte(pos + 1)
    local v = der:sub(pos + 2, pos + 1 + len)
    pos = pos + 2 + len
    v = v:gsub("^%z+", "")
    return string.rep("\0", 32 - #v) .. v
  end
  return int() .. int()
end

local function sign(claims, alg, kid)
  local h = smg.crypto.b64url_encode(smg.json.encode({ alg = alg, kid = kid, typ = "JWT" }))
  local p = smg.crypto.b64url_encode(smg.json.encode(claims))
  local input = file("input", h .. "." .. p)
  local sig = sh(("openssl dgst -sha256 -sign %s/%s.pem %s"):format(dir, alg == "RS256" and "rsa" or "ec", input))
  if alg == "ES256" then sig = der_to_raw(sig) end
  return h .. "." .. p .. "." .. smg.crypto.b64url_encode(sig)
end

describe("jwt auth", function()
  local p = assert(plugins.load("auth", "jwt", { issuer = "https://as.test", audience = "https://rs.test/mcp",
    jwks_file = jwks, required_scopes = { "mcp" } }))
  teardown(function() os.execute("rm -rf " .. dir) end)
  local function claims(extra)
    local c = { iss = "https://as.test", aud = "https://rs.test/mcp", sub = "alice", exp = os.time() + 60, scope = "mcp x" }
    for k, v in pairs(extra or {}) do c[k] = v end
    return c
  end
  local function verify(tok)
    local ok, res, why = plugins.run_hook(p, "authenticate", 2, { headers = { authorization = "Bearer " .. tok } },
      p.config, { mcp_configs = {} })
    assert.is_true(ok)
    return res, why
  end

  it("accepts RS256 and ES256 tokens and maps the claims to an identity", function()
    local id = verify(sign(claims(), "RS256", "r1"))
    assert.are.equal("alice", id.user_id)
    assert.are.same({ "mcp", "x" }, id.scopes)
    id = verify(sign(claims({ sub = "bob" }), "ES256", "e1"))
    assert.are.equal("bob", id.user_id)
  end)

  it("refuses each bad claim with its reason", function()
    local cases = {
      { claims({ exp = os.time() - 3600 }), "token expired" },
      { claims({ aud = "https://other/mcp" }), "wrong audience" },
      { claims({ iss = "https://evil" }), "wrong issuer" },
      { claims({ exp = false }), "token has no exp" },
    }
    for _, c in ipairs(cases) do
      if c[1].exp == false then c[1].exp = nil end
      local id, why = verify(sign(c[1], "RS256", "r1"))
      assert.is_nil(id)
      assert.are.equal(c[2], why)
    end
    local _, why = verify(sign(claims({ scope = "x" }), "RS256", "r1"))
    assert.are.same({ message = "insufficient scope", status = 403 }, why)
    _, why = verify(sign(claims(), "RS256", "e1"))
    assert.are.equal("bad signature or unknown key", why, "RS256 signature checked against an EC key")
  end)

  it("challenges with the metadata location, and serves the metadata", function()
    local ch = p.challenge({ host = "gw.test:8000", path = "/mcp" }, p.config, "token expired")
    assert.are.equal('Bearer realm="smg", resource_metadata="http://gw.test:8000/.well-known/oauth-protected-resource/mcp", '
      .. 'error="invalid_token", error_description="token expired", scope="mcp"', ch)
    local md = p.resource_metadata(p.config, { host = "gw.test:8000", path = "/mcp" })
    assert.are.equal("http://gw.test:8000/mcp", md.resource)
    assert.are.same({ "https://as.test" }, md.authorization_servers)
  end)
end)
