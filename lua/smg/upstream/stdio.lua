-- Stdio upstream transport: a child process spawned once and kept alive. stdout lines are
-- MCP messages; stderr lines go to the log; anything on stdout that is not JSON-RPC is
-- logged and dropped (a misbehaving server cannot corrupt the stream of anyone else).
local smg = require "smg"
local core = require "smg.core"
local json = smg.json
local log = smg.log

local Stdio = {}
Stdio.__index = Stdio

function Stdio.new(client)
  return setmetatable({ client = client, proc = nil, garbage = 0 }, Stdio)
end

local function env_list(spec_env)
  -- The child inherits our environment plus the server's own variables.
  local env, seen = {}, {}
  for k, v in pairs(spec_env or {}) do
    env[#env + 1] = k .. "=" .. v
    seen[k] = true
  end
  for _, line in ipairs(Stdio.environ()) do
    local k = line:match("^([^=]+)=")
    if k and not seen[k] then env[#env + 1] = line end
  end
  return env
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
    env = env_list(cfg.env),
    cwd = cfg.cwd,
    max_line = c.gw and c.gw.max_message_bytes or 64 * 1024 * 1024,
  }, function(stream, line)
    if stream == 2 then
      log.info(("[%s] %s"):format(c.name, line))
      return
    end
    local msg = json.decode(line)
    if type(msg) ~= "table" then
      self.garbage = self.garbage + 1
      log.warn(("upstream %s wrote a non-JSON line to stdout (dropped): %s"):format(c.name, line:sub(1, 200)))
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
  local ok, err = self.proc:write(line .. "\n")
  if not ok then return nil, err end
  return true
end

-- The MCP stdio shutdown: close stdin, then SIGTERM, then SIGKILL.
function Stdio:close()
  local proc = self.proc
  self.proc = nil
  if proc then proc:shutdown(2000) end
end

return Stdio
