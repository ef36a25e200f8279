-- smg.json (yyjson): the round trips a forwarding gateway depends on.
local smg = require "smg"
local json = smg.json

describe("smg.json", function()
  it("round-trips empty arrays and objects distinctly", function()
    local v = json.decode('{"a":[],"b":{},"c":[1,[]]}')
    assert.is_true(json.is_array(v.a))
    assert.is_false(json.is_array(v.b))
    local back = json.decode(json.encode(v))
    assert.is_true(json.is_array(back.a))
    assert.are.equal("[]", json.encode(v.a))
    assert.are.equal("{}", json.encode(v.b))
    assert.are.equal("[1,[]]", json.encode(v.c))
  end)

  it("keeps null, booleans, unicode and slashes", function()
    local v = json.decode('{"n":null,"t":true,"s":"h\\u00e9/\\u2028x"}')
    assert.are.equal(json.null, v.n)
    assert.is_true(v.t)
    local out = json.encode(v)
    assert.is_truthy(out:find('"n":null', 1, true))
    assert.is_truthy(out:find("h\xc3\xa9/", 1, true)) -- no \/ escaping
  end)

  it("writes integers as integers and keeps double precision", function()
    assert.are.equal("[1,-2,1732500000000,9007199254740991]", json.encode(json.array({ 1, -2, 1732500000000, 9007199254740991 })))
    assert.are.equal(0.1, json.decode(json.encode(0.1)))
    assert.are.equal(1e300, json.decode(json.encode(1e300)))
  end)

  it("returns nil, err on bad input and never raises", function()
    local v, err = json.decode("{bad")
    assert.is_nil(v)
    assert.matches("invalid JSON", err)
    v, err = json.decode(string.rep("[", 100000))
    assert.is_nil(v)
    assert.is_string(err)
    local s, eerr = json.encode({ f = function() end })
    assert.is_nil(s)
    assert.matches("cannot encode", eerr)
    s, eerr = json.encode(0 / 0)
    assert.is_nil(s)
  end)

  it("refuses cycles instead of recursing forever", function()
    local t = {}
    t.self = t
    local s, err = json.encode(t)
    assert.is_nil(s)
    assert.matches("deeply", err)
  end)

  it("encodes plain Lua sequences as arrays and empty tables as objects", function()
    assert.are.equal('["a","b"]', json.encode({ "a", "b" }))
    assert.are.equal("{}", json.encode({}))
  end)
end)
