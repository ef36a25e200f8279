-- Coroutine plumbing for the binding: every hook and handler runs in a coroutine, and
-- I/O waits by yielding until a libuv callback resumes it (the cosocket pattern, written
-- in Lua on top of callback-style C functions, as neovim's vim._async does over luv).
local core = require "smg.core"

local M = {}
local co_running, co_resume, co_yield, co_create = coroutine.running, coroutine.resume,
  coroutine.yield, coroutine.create

local function report(co, err)
  core.log(3, "uncaught error in coroutine: " .. debug.traceback(co, tostring(err)))
end

-- Resumes co and reports (never raises) an error inside it.
function M.resume(co, ...)
  local ok, err = co_resume(co, ...)
  if not ok then report(co, err) end
  return ok
end

-- Runs fn(...) in a new coroutine right away; returns the coroutine.
function M.spawn(fn, ...)
  local co = co_create(fn)
  M.resume(co, ...)
  return co
end

function M.in_coroutine()
  local co, main = co_running()
  return co ~= nil and not main
end

local function current()
  local co, main = co_running()
  if not co or main then error("this call waits for I/O and must run inside a coroutine (a hook, a handler, or smg.spawn)", 3) end
  return co
end
M.current = current

-- A one-shot result that coroutines can wait on.
local Future = {}
Future.__index = Future

function M.future()
  return setmetatable({ done = false, waiters = nil }, Future)
end

function Future:set(...)
  if self.done then return false end
  self.done = true
  self.n = select("#", ...)
  self.values = { ... }
  local waiters = self.waiters
  self.waiters = nil
  if waiters then
    for i = 1, #waiters do
      local w = waiters[i]
      if not w.gone then
        w.gone = true
        if w.timer then w.timer:close() end
        M.resume(w.co, unpack(self.values, 1, self.n))
      end
    end
  end
  return true
end

-- Module-level timer callbacks: closures created per call would keep LuaJIT from
-- compiling the request path.
local function on_wait_timeout(w)
  if w.gone then return end
  w.gone = true
  w.timer:close()
  M.resume(w.co, nil, "timeout")
end

-- Waits for the value; with timeout (seconds) returns nil, "timeout" when it passes first.
function Future:wait(timeout)
  if self.done then return unpack(self.values, 1, self.n) end
  local w = { co = current() }
  local waiters = self.waiters
  if not waiters then
    waiters = {}
    self.waiters = waiters
  end
  waiters[#waiters + 1] = w
  if timeout then w.timer = core.timer(timeout * 1000, 0, on_wait_timeout, w) end
  return co_yield()
end

local function on_sleep_done(s)
  s.timer:close()
  M.resume(s.co)
end

function M.sleep(seconds)
  local s = { co = current() }
  s.timer = core.timer(math.max(0, seconds) * 1000, 0, on_sleep_done, s)
  co_yield()
end

-- Runs the functions concurrently and waits for all; returns their first results in order.
function M.all(fns)
  local n = #fns
  if n == 0 then return {} end
  local results, left, f = {}, n, M.future()
  for i = 1, n do
    M.spawn(function()
      local ok, v = pcall(fns[i])
      results[i] = ok and v or nil
      if not ok then core.log(3, "task failed: " .. tostring(v)) end
      left = left - 1
      if left == 0 then f:set() end
    end)
  end
  f:wait()
  return results
end

return M
