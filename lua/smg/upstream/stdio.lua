-- Stdio upstream transport: a child process spawned once and kept alive. stdout lines are
-- MCP messages; stderr lines go to the log, escaped, truncated and rate-limited; anything
-- on stdout that is not JSON-RPC is logged and dropped (a misbehaving server cannot
-- corrupt the stream of anyone else), and fails its call at once when the line still
-- names the id of a request in flight.
local smg = require "smg"
local core = require "smg.core"
local oauth = require "smg.upstream.oauth"
local log = smg.log

local Stdio = {}
Stdio.__index = Stdio

function Stdio.new(client)
  return setmetatable({ client = client, proc = nil, garbage = 0 }, Stdio)
end

-- What the MCP SDKs pass to a stdio server by default: enough to run a program, nothing
-- that belongs to someone else (API keys of other servers, smg's own secrets).
Stdio.BASE_ENV = { "HOME", "LOGNAME", "PATH", "SHELL", "TERM", "USER" }

-- The child's environment: the base names and the server's inherit_env names (exact, or
-- a prefix ending in '*') taken from ours, then the server's own env on top.
function Stdio.env_list(cfg, extra)
  local wanted, prefixes = {}, {}
  for _, k in ipairs(Stdio.BASE_ENV) do wanted[k] = true end
  for _, k in ipairs(cfg.inherit_env or {}) do
    if k:sub(-1) == "*" then prefixes[#prefixes + 1] = k:sub(1, -2) else wanted[k] = true end
  end
  local env, seen = {}, {}
  for k, v in pairs(extra or {}) do -- the gateway's OAuth token (upstream/oauth.lua)
    env[#env + 1] = k .. "=" .. v
    seen[k] = true
  end
  for k, v in pairs(cfg.env or {}) do
    if not seen[k] then
      env[#env + 1] = k .. "=" .. v
      seen[k] = true
    end
  end
  for _, line in ipairs(Stdio.environ()) do
    local k = line:match("^([^=]+)=")
    if k and not seen[k] then
      local take = wanted[k]
      for i = 1, #prefixes do
        if not take and k:sub(1, #prefixes[i]) == prefixes[i] then take = true end
      end
      if take then env[#env + 1] = line end
    end
  end
  return env
end

-- stderr is the server's to write and ours to log: control bytes (ANSI escapes, CR that
-- would overwrite earlier log text) are shown as \xNN, lines are cut at STDERR_MAX bytes,
-- and a token bucket (STDERR_RATE lines/s, STDERR_BURST at once) keeps a chatty or
-- hostile server from filling the disk; what it drops is counted in the log.
local STDERR_MAX, STDERR_RATE, STDERR_BURST = 1024, 20, 100

function Stdio.escape_line(line)
  local cut = #line > STDERR_MAX
  if cut then line = line:sub(1, STDERR_MAX) end
  line = line:gsub("[%z\1-\8\11-\31\127]", function(c) return ("\\x%02x"):format(c:byte()) end)
  if cut then line = line .. "... (truncated)" end
  return line
end

local function report_dropped(self)
  self.err_report:close()
  self.err_report = nil
  if (self.err_dropped or 0) > 0 then
    log.warn(("[%s] %d stderr line(s) dropped (rate limit)"):format(self.client.name, self.err_dropped))
    self.err_dropped = 0
  end
end

function Stdio:log_stderr(line)
  local now = smg.monotime()
  local tokens = math.min(STDERR_BURST, (self.err_tokens or STDERR_BURST) + (now - (self.err_at or now)) * STDERR_RATE)
  self.err_at = now
  if tokens < 1 then
    self.err_tokens = tokens
    self.err_dropped = (self.err_dropped or 0) + 1
    if not self.err_report then -- one summary a second while the flood lasts
      self.err_report = core.timer(1000, 0, report_dropped, self)
    end
    return
  end
  self.err_tokens = tokens - 1
  log.info(("[%s] %s"):format(self.client.name, Stdio.escape_line(line)))
end

-- Our environment as "K=V" strings (read once from /proc; Linux only, like the rest).
local environ_cache
function Stdio.environ()
  if environ_cache then return environ_cache end
  local out = {}
  local f = io.open("/proc/self/environ", "rb")
  if f then
    local data = f:read("*a")
    f:close()
    for entry in data:gmatch("([^%z]+)") do out[#out + 1] = entry end
  end
  environ_cache = out
  return out
end

local function resolve(command)
  if command:find("/", 1, true) then return command end
  for dir in (os.getenv("PATH") or "/usr/bin:/bin"):gmatch("[^:]+") do
    local p = dir .. "/" .. command
    local f = io.open(p, "rb")
    if f then
      f:close()
      return p
    end
  end
  return command
end

-- The command line, through `smg sandbox-exec` when the server has a sandbox: limits are
-- applied in the child before the real server is exec'ed (runtime/sandbox.c).
local function command_line(spec)
  local cfg = spec.config
  local sb = spec.sandbox
  if not sb then return resolve(cfg.command), cfg.args end
  local exe = core.paths()
  local args = { "sandbox-exec" }
  if sb.no_new_privileges then args[#args + 1] = "--no-new-privs" end
  if sb.network == false then args[#args + 1] = "--no-network" end
  for key, opt in pairs({ memory_mb = "--memory-mb", open_files = "--open-files", processes = "--processes",
    cpu_seconds = "--cpu-seconds", file_size_mb = "--file-size-mb" }) do
    if sb[key] then
      args[#args + 1] = opt
      args[#args + 1] = tostring(sb[key])
    end
  end
  args[#args + 1] = "--"
  args[#args + 1] = resolve(cfg.command)
  for _, a in ipairs(cfg.args or {}) do args[#args + 1] = a end
  return exe, args
end

function Stdio:open()
  local c = self.client
  local cfg = c.spec.config
  local file, args = command_line(c.spec)
  local proc, err
  proc, err = core.spawn({
    file = file,
    args = args,
    env = Stdio.env_list(cfg, self.bearer and oauth.env(c.spec, self.bearer)),
    cwd = cfg.cwd,
    max_line = c.limits.max_message_bytes,
    json = true, -- (stdout lines arrive decoded; `raw` only for one that decodes to no table)
  }, function(stream, msg, jerr, raw)
    if stream == 2 then return self:log_stderr(msg) end
    if stream == 3 then -- a line over max_message_bytes, dropped: `msg` is its two ends
      return c:fail_unparsable(msg, "a message longer than limits.max_message_bytes", nil, true)
    end
    if type(msg) ~= "table" then
      self.garbage = self.garbage + 1
      log.warn(("upstream %s wrote a line that is not a JSON-RPC message to stdout (dropped): %s"):format(c.name,
        Stdio.escape_line(raw:sub(1, 200))))
      c:fail_unparsable(raw, jerr or "not a JSON object")
      return
    end
    c:on_message(msg, nil)
  end, function(status, signal)
    if self.proc == proc then
      self.proc = nil
      local why = signal ~= 0 and ("killed by signal " .. signal) or ("exited with status " .. status)
      if c.state ~= "closed" then c:_down("process " .. why) end
    end
    proc:release()
  end)
  if not proc then return nil, err end
  self.proc = proc
  log.debug(("upstream %s spawned pid %d: %s"):format(c.name, proc:pid(), cfg.command))
  return true
end

function Stdio:initialized() end

function Stdio:pid() return self.proc and self.proc:pid() end

function Stdio:send(line)
  if not self.proc then return nil, "process not running" end
  local c = self.client
  local cap = c.limits.max_upstream_write_queue
  if self.proc:write_queue() + #line > cap then
    -- A server that stopped reading its stdin would make us buffer without bound: it is
    -- treated as hung and restarted (its calls fail now, with this reason).
    log.error(("upstream %s is not reading its input (%d bytes queued); restarting it"):format(c.name,
      self.proc:write_queue()))
    self.proc:kill(9)
    return nil, "upstream is not reading its input"
  end
  local ok, err = self.proc:write(line .. "\n")
  if not ok then return nil, err end
  return true
end

-- The MCP stdio shutdown: close stdin, then SIGTERM, then SIGKILL.
function Stdio:close()
  if self.err_report then report_dropped(self) end
  local proc = self.proc
  self.proc = nil
  if proc then proc:shutdown(2000) end
end

return Stdio
