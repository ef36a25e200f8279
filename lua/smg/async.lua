-- Coroutine plumbing for the binding: every hook and handler runs in a coroutine, and
-- I/O waits by yielding until a libuv callback resumes it (the cosocket pattern, written
-- in Lua on top of callback-style C functions, as neovim's vim._async does over luv).
local core = require "smg.core"

local M = {}

-- The monotonic clock, read through the FFI when it is there: a Lua C function call ends
-- the JIT trace it is made from, and the guarded call path reads the clock a dozen times.
-- The wall clock (M.now) likewise: the cache reads it on every lookup to check expiry.
do
  local ok, ffi = pcall(require, "ffi")
  if ok and pcall(ffi.cdef, "uint64_t uv_hrtime(void);") and pcall(function() return ffi.C.uv_hrtime end) then
    local C = ffi.C
    M.hrtime = function() return tonumber(C.uv_hrtime()) / 1e9 end
  else
    M.hrtime = core.hrtime
  end
  if ok and pcall(ffi.cdef, "struct smg_timespec { long tv_sec; long tv_nsec; };"
      .. "int clock_gettime(int clock, struct smg_timespec *ts);")
    and pcall(function() return ffi.C.clock_gettime end) then
    local C, ts, REALTIME = ffi.C, ffi.new("struct smg_timespec"), 0 -- (CLOCK_REALTIME)
    M.now = function()
      C.clock_gettime(REALTIME, ts)
      return tonumber(ts.tv_sec) + tonumber(ts.tv_nsec) / 1e9
    end
  else
    M.now = core.now
  end
end
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

-- Workers: coroutines that run one spawned function after another. Every client request
-- and hook runs in a coroutine of its own; reusing them saves creating (and collecting) a
-- coroutine and its stack each time. A parked worker is only woken by spawn, which hands it
-- TASK first: any other resume (a stray callback) is reported and ignored.
local TASK = {}
local POOL_MAX = 256
local pool, npool = {}, 0

local function traceback(e) return debug.traceback(tostring(e), 2) end

-- Calls fn with exactly the n arguments spawn was given (select("#", ...) stays right).
local function call_n(fn, n, a, b, c, d, e)
  if n == 0 then return fn() end
  if n == 1 then return fn(a) end
  if n == 2 then return fn(a, b) end
  if n == 3 then return fn(a, b, c) end
  if n == 4 then return fn(a, b, c, d) end
  return fn(a, b, c, d, e)
end

local function worker(tag, fn, n, a, b, c, d, e)
  local self = co_running()
  while true do
    if tag == TASK then
      local ok, err = xpcall(call_n, traceback, fn, n, a, b, c, d, e)
      if not ok then core.log(3, "uncaught error in coroutine: " .. tostring(err)) end
      if npool >= POOL_MAX then return end
      npool = npool + 1
      pool[npool] = self
    else
      core.log(3, "a parked coroutine was resumed by something other than spawn (ignored)")
    end
    tag, fn, n, a, b, c, d, e = co_yield()
  end
end

-- Runs fn(...) in a coroutine right away, until it first waits; returns the coroutine
-- (a worker: once fn returns it may run something else). More than five arguments get a
-- coroutine of their own.
function M.spawn(fn, ...)
  local n = select("#", ...)
  if n > 5 then
    local co = co_create(fn)
    M.resume(co, ...)
    return co
  end
  local co
  if npool > 0 then
    co = pool[npool]
    pool[npool] = nil
    npool = npool - 1
  else
    co = co_create(worker)
  end
  M.resume(co, TASK, fn, n, ...)
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

-- Deadlines of waiting futures live on a wheel of TICK-sized slots served by one
-- repeating timer, instead of a libuv timer per wait: a gateway call waits with a timeout
-- every time, and this keeps that to a few table operations. Timeouts fire up to one
-- TICK late.
local TICK = 0.025
local wheel, wheel_count, wheel_timer, last_slot = {}, 0, nil, 0

local function wheel_tick()
  local now_slot = math.floor(M.hrtime() / TICK)
  for slot = last_slot + 1, now_slot do
    local list = wheel[slot]
    if list then
      wheel[slot] = nil
      for i = 1, list.n do
        local w = list[i]
        if w then
          wheel_count = wheel_count - 1
          if not w.gone then
            w.gone = true
            M.resume(w.co, nil, "timeout")
          end
        end
      end
    end
  end
  last_slot = now_slot
  if wheel_count == 0 and wheel_timer then
    wheel_timer:close()
    wheel_timer = nil
  end
end

local function wheel_add(w, timeout)
  if not wheel_timer then
    last_slot = math.floor(M.hrtime() / TICK)
    wheel_timer = core.timer(TICK * 1000, TICK * 1000, wheel_tick)
  end
  local slot = math.floor((M.hrtime() + timeout) / TICK) + 1
  local list = wheel[slot]
  if not list then
    list = { live = 0, n = 0 }
    wheel[slot] = list
  end
  local i = list.n + 1
  list.n = i
  list[i] = w
  list.live = list.live + 1
  w.slot, w.index = slot, i
  wheel_count = wheel_count + 1
end

local function wheel_remove(w)
  local list = wheel[w.slot]
  if list and list[w.index] == w then
    list[w.index] = false
    list.live = list.live - 1
    -- Most waits end long before their deadline: free the slot as soon as it empties.
    if list.live == 0 then wheel[w.slot] = nil end
    wheel_count = wheel_count - 1
    if wheel_count == 0 and wheel_timer then
      wheel_timer:close()
      wheel_timer = nil
    end
  end
end

-- A one-shot result that coroutines can wait on.
local Future = {}
Future.__index = Future

function M.future()
  return setmetatable({ done = false, waiters = nil }, Future)
end

-- Up to three values are kept in fields (every call's result goes through a future: no
-- table for its values); more in a table.
local function values(self)
  if self.n <= 3 then return self.v1, self.v2, self.v3 end
  return unpack(self.values, 1, self.n)
end

function Future:set(...)
  if self.done then return false end
  self.done = true
  local n = select("#", ...)
  self.n = n
  if n <= 3 then
    self.v1, self.v2, self.v3 = ...
  else
    self.values = { ... }
  end
  local waiters = self.waiters
  self.waiters = nil
  if waiters then
    for i = 1, #waiters do
      local w = waiters[i]
      if not w.gone then
        w.gone = true
        if w.slot then wheel_remove(w) end
        M.resume(w.co, values(self))
      end
    end
  end
  return true
end

-- Coroutines running a cpu_only hook inline (plugins.run_hook): they may not wait.
local inline = {}

local function waitable()
  local co = current()
  if inline[co] then error("a cpu_only hook cannot wait for I/O (declare the plugin without cpu_only)", 3) end
  return co
end

-- Waits for the value; with timeout (seconds) returns nil, "timeout" when it passes first.
function Future:wait(timeout)
  if self.done then return values(self) end
  local w = { co = waitable() }
  local waiters = self.waiters
  if not waiters then
    waiters = {}
    self.waiters = waiters
  end
  waiters[#waiters + 1] = w
  if timeout then wheel_add(w, timeout) end
  return co_yield()
end

local function on_sleep_done(s)
  s.timer:close()
  M.resume(s.co)
end

function M.sleep(seconds)
  local s = { co = waitable() }
  s.timer = core.timer(math.max(0, seconds) * 1000, 0, on_sleep_done, s)
  co_yield()
end

-- Time budgets for long CPU work (a guardrail scanning a 50 MB result): the hook runner
-- sets one per hook; the work calls checkpoint() between slices, which lets the loop run
-- and stops the work with an error once its budget is spent, so a hook that timed out
-- does not go on burning the CPU nobody waits for.
-- A budget starts counting at the coroutine's first checkpoint, not when it is set: most
-- hooks never reach a checkpoint, and then setting one costs no clock reading. (Not weak
-- tables: the hook runner clears what it sets, and weak tables cost the collector.)
local budgets, deadlines = {}, {}
local last_yield = setmetatable({}, { __mode = "k" })
local QUANTUM = 0.002 -- seconds of CPU work between two yields to the loop

-- Sets (seconds) or clears (nil) the budget of the running coroutine.
function M.set_deadline(seconds)
  local co = co_running()
  if not co then return end
  budgets[co] = seconds
  if deadlines[co] then deadlines[co] = nil end
end

-- Runs fn(a, b, c, d, e) on the running coroutine with a time budget, as a hook that never
-- waits for I/O (it may still yield at checkpoints): no coroutine switch, which is most of
-- what running a small hook costs. Returns xpcall's results; the coroutine's own budget is
-- put back afterwards.
function M.run_inline(seconds, fn, handler, a, b, c, d, e)
  local co = co_running()
  local saved_budget, saved_deadline = budgets[co], deadlines[co]
  budgets[co], deadlines[co] = seconds, nil
  inline[co] = (inline[co] or 0) + 1
  local ok, r1, r2 = xpcall(fn, handler, a, b, c, d, e)
  local depth = inline[co] - 1
  inline[co] = depth > 0 and depth or nil
  budgets[co], deadlines[co] = saved_budget, saved_deadline
  return ok, r1, r2
end

-- The budget of `co` is spent now (its caller stopped waiting): its next checkpoint raises.
function M.expire(co)
  if budgets[co] then deadlines[co] = 0 end
end

-- Coroutines waiting for their next turn, resumed after the loop has polled for I/O (a
-- zero-delay timer would not do: libuv runs a timer started by a timer in the same phase,
-- so a chain of them never lets the poll run).
local turn_queue, turn_handler = {}, nil

local function take_turns()
  local q = turn_queue
  turn_queue = {}
  for i = 1, #q do M.resume(q[i]) end
end

-- Yields until the loop has served pending I/O (and whoever else waits for a turn).
function M.next_turn()
  local co = current()
  if not turn_handler then
    turn_handler = take_turns
    core.immediate_handler(take_turns)
  end
  if #turn_queue == 0 then core.arm_immediate() end
  turn_queue[#turn_queue + 1] = co
  co_yield()
end

-- Cheap enough to call often: it yields only when QUANTUM has passed since the last
-- yield, so others wait at most about that long for a turn. Outside a coroutine (a tool
-- running a guardrail synchronously) there is no one to yield to: it does nothing.
function M.checkpoint()
  local co, main = co_running()
  if not co or main then return end
  local now = M.hrtime()
  local b = budgets[co]
  if b and not deadlines[co] then deadlines[co] = now + b end
  local last = last_yield[co]
  if not last then
    last_yield[co] = now
    return
  end
  if now - last < QUANTUM then return end
  M.next_turn()
  now = M.hrtime()
  last_yield[co] = now
  local d = deadlines[co]
  if d and now > d then error("time budget spent", 0) end
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
