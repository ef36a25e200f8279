-- The public binding, api_version 1: the functions docs/plugin-api.md documents.
local smg = require "smg"

describe("smg binding v1", function()
  it("exposes the documented surface", function()
    assert.are.equal(1, smg.api_version)
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
end)
