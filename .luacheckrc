-- luacheck (Debian's lua-check), run by the test suite: zero warnings.
std = "luajit"
max_line_length = 180
-- Hooks and callbacks keep their documented signatures even when a parameter is unused.
unused_args = false
-- Specs often keep only the second of two results (ok, err = ...): fine there.
files["tests"] = { std = "+busted", ignore = { "311", "211/smg" } }
files["tests/fuzz"] = { globals = { "fuzz_one" } }
