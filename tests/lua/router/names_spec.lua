-- Allow/deny globs and URI templates: right answers, and linear time on crafted input
-- (the pattern-based matcher they replaced took seconds on 47 characters).
local names = require "smg.router.names"
local smg = require "smg"

local function spec(allow, deny) return { allow_tools = allow or {}, deny_tools = deny or {} } end

describe("router.names", function()
  it("matches globs", function()
    assert.is_true(names.glob("delete_*", "delete_repo"))
    assert.is_true(names.glob("*", ""))
    assert.is_true(names.glob("a*b*c", "aXXbYYc"))
    assert.is_false(names.glob("a*b*c", "aXXbYY"))
    assert.is_false(names.glob("read", "read_file"))
    assert.is_true(names.glob("*_file", "read_file"))
  end)

  it("applies allow then deny", function()
    assert.is_true(names.allowed(spec(), "anything"))
    assert.is_true(names.allowed(spec({ "read_*" }), "read_file"))
    assert.is_false(names.allowed(spec({ "read_*" }), "write_file"))
    assert.is_false(names.allowed(spec({ "read_*" }, { "read_secret*" }), "read_secrets"))
    assert.is_false(names.allowed(spec(), nil))
  end)

  it("matches URI templates without crossing a slash", function()
    local p = names.template("file:///{dir}/{name}.txt")
    assert.are.equal("file:///*/*.txt", p)
    assert.is_true(names.template_match(p, "file:///docs/a.txt"))
    assert.is_false(names.template_match(p, "file:///docs/sub/a.txt"))
    assert.is_false(names.template_match(p, "file:///docs/a.md"))
  end)

  it("stays linear on input built to backtrack", function()
    local p = names.template("evil://{x}{x}{x}{x}{x}{x}{x}{x}!")
    local uri = "evil://" .. ("a"):rep(4000)
    local t0 = smg.monotime()
    for _ = 1, 20 do assert.is_false(names.template_match(p, uri)) end
    local g = ("*a"):rep(20) .. "!"
    for _ = 1, 20 do assert.is_false(names.glob(g, ("a"):rep(4000))) end
    assert.is_true(smg.monotime() - t0 < 1, "40 adversarial matches took more than a second")
  end)
end)
