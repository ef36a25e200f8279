-- The public binding, api_version 1: the functions docs/plugin-api.md documents.
local smg = require "smg"

describe("smg binding v1", function()
  it("exposes the documented surface", function()
    assert.are.equal(1, smg.api_version)
    assert.are.equal(2, smg.api_minor)
    for _, name in ipairs({ "now", "monotime", "sleep", "spawn", "future", "timer", "hash", "mask", "random_hex",
      "secure_equal" }) do
      assert.is_function(smg[name], name)
    end
    for _, name in ipairs({ "debug", "info", "warn", "error" }) do assert.is_function(smg.log[name]) end
    assert.is_function(smg.http.request)
    assert.is_function(smg.json.encode)
  end)

  it("masks secrets", function()
    assert.are.equal("****efgh", smg.mask("abcd1234efgh"))
    assert.are.equal("****", smg.mask("short"))
    local t = smg.mask_table({ api_key = "sk-1234567890abcdef", nested = { password = "hunter2hunter2" }, name = "x" })
    assert.are.equal("****cdef", t.api_key)
    assert.are.equal("****ter2", t.nested.password)
    assert.are.equal("x", t.name)
  end)

  it("hashes with SHA-256 and compares in constant time", function()
    assert.are.equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", smg.hash(""))
    assert.are.equal(32, #smg.random_hex(16))
    assert.are_not.equal(smg.random_hex(16), smg.random_hex(16))
    assert.is_true(smg.secure_equal("abc", "abc"))
    assert.is_false(smg.secure_equal("abc", "abd"))
    assert.is_false(smg.secure_equal("abc", "abcd"))
  end)

  it("makes HTTP requests that yield, against a real local server", function()
    local core = require "smg.core"
    local server = core.http_listen("127.0.0.1", 0, {}, function(req)
      req:respond(201, { ["X-Echo"] = req:header("x-in") or "" }, req:method() .. " " .. req:path() .. " " .. req:body())
    end)
    local url = "http://127.0.0.1:" .. server:port() .. "/p"
    local resp, err = smg.http.request({ method = "POST", url = url, body = "hi", headers = { ["X-In"] = "v" } })
    assert.is_nil(err)
    assert.are.equal(201, resp.status)
    assert.are.equal("v", resp.headers["x-echo"])
    assert.are.equal("POST /p hi", resp.body)
    server:close()
    local r2, e2 = smg.http.request({ url = url, timeout = 2 })
    assert.is_nil(r2)
    assert.is_string(e2)
  end)

  it("reads a request's headers several at once and decodes its body in place", function()
    local core = require "smg.core"
    local seen
    local server = core.http_listen("127.0.0.1", 0, {}, function(req)
      local a, missing, b, params = req:header("x-a", "x-none", "X-B", "mcp-param-*")
      local none, all = req:header("x-none-*", "*")
      local body, err = req:json()
      seen = { a = a, missing = missing, b = b, params = params, none = none, all = all, body = body, err = err }
      req:respond(200, {}, "")
    end)
    local url = "http://127.0.0.1:" .. server:port() .. "/"
    smg.http.request({ method = "POST", url = url, body = '{"id":7,"list":[1,2]}',
      headers = { ["X-A"] = "1", ["x-b"] = "2", ["Mcp-Param-Region"] = "eu", ["mcp-param-tier"] = "gold" } })
    assert.are.equal("1", seen.a)
    assert.is_nil(seen.missing)
    assert.are.equal("2", seen.b)
    assert.are.same({ ["mcp-param-region"] = "eu", ["mcp-param-tier"] = "gold" }, seen.params)
    assert.is_nil(seen.none, "no header has the prefix: nil, no table")
    assert.are.equal("1", seen.all["x-a"])
    assert.are.equal("eu", seen.all["mcp-param-region"])
    assert.are.equal(7, seen.body.id)
    assert.is_true(smg.json.is_array(seen.body.list))
    smg.http.request({ method = "POST", url = url, body = "{not json" })
    assert.is_nil(seen.body)
    assert.matches("invalid JSON at byte", seen.err)
    server:close()
  end)

  it("encodes base64 both ways and verifies a JWS signature with OpenSSL", function()
    assert.are.equal("aGk/Pz4+", smg.crypto.b64encode("hi??>>"))
    assert.are.equal("aGk_Pz4-", smg.crypto.b64url_encode("hi??>>"))
    assert.are.equal("hi??>>", smg.crypto.b64decode("aGk_Pz4-"))
    assert.are.equal("hi??>>", smg.crypto.b64decode("aGk/Pz4+"))
    assert.is_nil(smg.crypto.b64decode("a$b"))
    assert.are.equal(32, #smg.crypto.hmac_sha256("k", "d"))
    -- AES-256-GCM: a round trip; a flipped bit, other aad or another key is refused.
    local key, key2 = smg.crypto.sha256("k1"), smg.crypto.sha256("k2")
    local box = smg.crypto.aead_seal(key, "secret text", "aad")
    assert.are.equal(12 + #"secret text" + 16, #box)
    assert.is_nil(box:find("secret text", 1, true))
    assert.are.equal("secret text", smg.crypto.aead_open(key, box, "aad"))
    assert.are_not.equal(box, smg.crypto.aead_seal(key, "secret text", "aad"), "a fresh nonce each time")
    local flipped = box:sub(1, 14) .. string.char((box:byte(15) + 1) % 256) .. box:sub(16)
    assert.are.same({ nil, "forged or corrupted" }, { smg.crypto.aead_open(key, flipped, "aad") })
    assert.is_nil(smg.crypto.aead_open(key, box, "other aad"))
    assert.is_nil(smg.crypto.aead_open(key2, box, "aad"))
    assert.is_nil(smg.crypto.aead_open(key, "short"))
    assert.are.equal("", smg.crypto.aead_open(key, smg.crypto.aead_seal(key, "")))
    assert.has_error(function() smg.crypto.aead_seal("short key", "x") end)
    -- RFC 7515 appendix A.3 (ES256) example.
    local jwk = { kty = "EC", crv = "P-256", x = "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
      y = "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0" }
    local input = "eyJhbGciOiJFUzI1NiJ9.eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ"
    local sig = smg.crypto.b64decode("DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q")
    assert.is_true(smg.crypto.verify_jws("ES256", jwk, input, sig))
    local ok, why = smg.crypto.verify_jws("ES256", jwk, input .. "x", sig)
    assert.is_false(ok)
    assert.are.equal("bad signature", why)
    ok, why = smg.crypto.verify_jws("HS256", jwk, input, sig)
    assert.matches("unsupported alg", why)
  end)

  it("signs JWS input with a PEM private key (checked by openssl), refusing what does not fit", function()
    local dir = os.tmpname()
    os.remove(dir)
    assert(os.execute("mkdir -p " .. dir .. " && cd " .. dir .. " && openssl genpkey -algorithm RSA -pkeyopt "
      .. "rsa_keygen_bits:2048 -out k.pem 2>/dev/null && openssl pkey -in k.pem -pubout -out pub.pem 2>/dev/null && "
      .. "openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out ec.pem 2>/dev/null") == 0)
    local pem = smg.read_file(dir .. "/k.pem")
    local sig = assert(smg.crypto.sign_jws("RS256", pem, "header.payload"))
    assert.are.equal(256, #sig)
    local f = io.open(dir .. "/sig", "wb")
    f:write(sig)
    f:close()
    f = io.open(dir .. "/data", "wb")
    f:write("header.payload")
    f:close()
    assert.are.equal(0, os.execute("openssl dgst -sha256 -verify " .. dir .. "/pub.pem -signature " .. dir .. "/sig "
      .. dir .. "/data >/dev/null 2>&1"))
    local ec = smg.read_file(dir .. "/ec.pem")
    assert.are.equal(64, #assert(smg.crypto.sign_jws("ES256", ec, "x")), "ECDSA as r || s")
    local none, why = smg.crypto.sign_jws("RS256", ec, "x")
    assert.is_nil(none)
    assert.matches("not a PEM RSA private key", why)
    assert.matches("unsupported alg", select(2, smg.crypto.sign_jws("HS256", pem, "x")))
    assert.is_nil(smg.crypto.sign_jws("ES256", "not a key", "x"))
    os.execute("rm -rf " .. dir)
  end)

  it("caches values with a TTL", function()
    smg.cache.set("spec:a", { 1, 2 })
    assert.are.same({ 1, 2 }, smg.cache.get("spec:a"))
    smg.cache.set("spec:b", "x", 0.05)
    assert.are.equal("x", smg.cache.get("spec:b"))
    smg.sleep(0.08)
    assert.is_nil(smg.cache.get("spec:b"))
    smg.cache.del("spec:a")
    assert.is_nil(smg.cache.get("spec:a"))
  end)

  it("offers the running config read-only, without API keys", function()
    smg._set_config({ gateway = { port = 1 }, apikeys = { secret = {} }, plugins = { guardrails = { config = { api_key = "sk-0123456789abcdef" } } } })
    assert.are.equal(1, smg.config.gateway.port)
    assert.is_nil(smg.config.apikeys)
    assert.are.equal("****cdef", smg.config.plugins.guardrails.config.api_key)
    assert.has_error(function() smg.config.gateway.port = 2 end)
  end)

  it("cancels plugin HTTP requests in flight", function()
    local core = require "smg.core"
    local server = core.http_listen("127.0.0.1", 0, {}, function() end) -- never answers
    local got
    smg.spawn(function()
      local r, e = smg.http.request({ url = "http://127.0.0.1:" .. server:port() .. "/", timeout = 30 })
      got = { r, e }
    end)
    smg.sleep(0.05)
    assert.are.equal(1, smg.http.cancel_all("stop"))
    assert.are.same({ nil, "stop" }, got)
    server:close()
  end)

  it("watches a directory for changes", function()
    local core = require "smg.core"
    local dir = os.tmpname()
    os.remove(dir)
    os.execute("mkdir -p " .. dir)
    local seen = {}
    local w = assert(core.fs_watch(dir, function(name) seen[#seen + 1] = name end))
    local f = assert(io.open(dir .. "/x.lua", "w"))
    f:write("return 1")
    f:close()
    local deadline = smg.monotime() + 2
    while #seen == 0 and smg.monotime() < deadline do smg.sleep(0.01) end
    w:close()
    assert.are.equal("x.lua", seen[1])
    local list = core.fs_list(dir)
    assert.are.same({ { name = "x.lua", type = "file" } }, list)
    os.execute("rm -rf " .. dir)
  end)
end)
