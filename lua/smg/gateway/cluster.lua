-- Config replication between instances (gateway.cluster), through the Redis of the
-- external cache. Every instance keeps its own config file; the sections the control plane
-- manages (SHARED below: servers, projects, users, API keys, plugins, the admin key) are
-- replicated, so a change made on one instance with the CLI, the admin API or an editor
-- reaches every instance at once. `gateway` (listeners, paths, limits) and
-- `common_mcp_gateway_config` (log level, the Redis connection itself) stay each
-- instance's own.
--
-- A change is a message on the channel and the channel's `:latest` key: {v, seq, origin,
-- box}. seq comes from INCR on `<channel>:seq`; `:latest` only moves forward (a script
-- compares seqs). box is the shared sections sealed with AES-256-GCM under a key derived
-- from gateway.cluster.secret, with (seq, origin) as associated data: Redis never holds API
-- keys in clear, and a message cannot be forged, altered or replayed under another seq
-- without the secret. An instance applies a message whose seq is above the highest it has
-- applied (kept in `<config>.cluster.json`, so an old message replayed into Redis is
-- refused after a restart too), through the config store in a worker process (validated,
-- backed up, atomic; never on this loop), then reloads. On (re)connecting it reads
-- `:latest`, so nothing published while it was away is missed; a change it made while
-- Redis was unreachable is published then instead. Concurrent changes on two instances:
-- the later seq wins everywhere (the earlier one stays in that instance's backups).
local smg = require "smg"
local core = require "smg.core"
local async = require "smg.async"
local worker = require "smg.worker"
local metrics = require "smg.metrics"
local json, log = smg.json, smg.log

local M = {}

M.SHARED = { "admin_apikey", "apikeys", "mcp_configs", "plugins", "projects", "users" }

local events = metrics.counter("smg_cluster_config_total",
  "Config replication: published, applied, refused (bad box or invalid), stale, failed", { "event" })

-- The next seq: above the counter, above :latest and above what this instance has seen
-- (ARGV[1]), so a Redis that lost its keys (flushed, restarted without persistence)
-- cannot hand out a seq the instances already applied. KEYS[1] the counter, KEYS[2]
-- latest's seq.
local ALLOCATE = [[
local s = redis.call('INCR', KEYS[1])
local floor = math.max(tonumber(redis.call('GET', KEYS[2]) or '0'), tonumber(ARGV[1]))
if s <= floor then
  s = floor + 1
  redis.call('SET', KEYS[1], s)
end
return s
]]

-- Moves :latest forward only, then publishes; -1 when a higher seq got there first.
-- KEYS[1] latest, KEYS[2] latest's seq.
local PUBLISH = [[
if tonumber(redis.call('GET', KEYS[2]) or '0') >= tonumber(ARGV[1]) then return -1 end
redis.call('SET', KEYS[2], ARGV[1])
redis.call('SET', KEYS[1], ARGV[2])
return redis.call('PUBLISH', ARGV[3], ARGV[2])
]]

-- The shared sections of a config document, as canonical JSON.
function M.shared_text(raw)
  local part = {}
  for _, k in ipairs(M.SHARED) do part[k] = raw[k] end
  return json.canonical(part)
end

local function aad(seq, origin) return ("smg-config-v1\n%d\n%s"):format(seq, origin) end

local function state_path(cfg) return cfg.source .. ".cluster.json" end

-- In the worker process (smg cli-exec, op "cluster_apply"): writes the shared sections of
-- `req.doc` (when given) into the config file through the store, and records req.seq.
-- Returns the worker's answer.
function M.apply_in_worker(req)
  local store = require "smg.store"
  if type(req.config) ~= "string" or type(req.seq) ~= "number" then return { ok = false, error = "bad request" } end
  if req.doc ~= nil then
    local incoming = json.decode(req.doc)
    if type(incoming) ~= "table" or json.is_array(incoming) then return { ok = false, error = "not a JSON object" } end
    local ok, err = store.update(req.config, function(doc)
      for _, k in ipairs(M.SHARED) do doc[k] = incoming[k] end
      return true
    end)
    if not ok then return { ok = false, error = tostring(err) } end
  end
  local ok, err = core.write_durable(req.config .. ".cluster.json", json.encode({ seq = req.seq }) .. "\n")
  if not ok then return { ok = false, error = tostring(err) } end
  return { ok = true }
end

-- Records `seq` (and writes `doc`'s shared sections) in a worker. Returns true | nil, err.
local function persist(self, seq, doc)
  local res, err = worker.run({ op = "cluster_apply", config = self.path, seq = seq, doc = doc }, 30)
  if not res then return nil, err end
  if not res.ok then return nil, res.error end
  return true
end

-- Publishes `text` as the next revision. Returns true | nil (logged).
local function publish(self, text)
  local r = self.cmd
  local seq, err, n
  seq, err = r:call("EVAL", ALLOCATE, "2", self.channel .. ":seq", self.channel .. ":latest_seq", self.seq)
  if type(seq) == "number" then
    local box = smg.crypto.b64encode(smg.crypto.aead_seal(self.key, text, aad(seq, self.id)))
    local msg = json.encode({ v = 1, seq = seq, origin = self.id, box = box })
    n, err = r:call("EVAL", PUBLISH, "2", self.channel .. ":latest", self.channel .. ":latest_seq", seq, msg,
      self.channel)
  end
  if n == -1 then
    -- Another instance published a later revision between our allocation and now: the
    -- later one wins everywhere (it reaches us too); ours is not sent again over it, which
    -- could bring an older state back.
    events:inc(1, "stale")
    log.info(("cluster: config revision %d was overtaken by a later one; not published"):format(seq))
    return true
  end
  if type(n) ~= "number" then
    events:inc(1, "failed")
    if not self.warned then log.warn("cluster: cannot publish the config change (" .. tostring(err) .. "); retrying") end
    self.warned = true
    return nil
  end
  self.warned, self.seq = false, math.max(self.seq, seq)
  events:inc(1, "published")
  log.info(("cluster: published config revision %d to %d other instance(s)"):format(seq, math.max(0, n - 1)))
  local ok, werr = persist(self, seq)
  if not ok then log.warn("cluster: cannot record revision " .. seq .. ": " .. tostring(werr)) end
  return true
end

-- Publishes the pending change, retrying every 2 s while Redis is unreachable; one such
-- loop at a time, always sending the newest pending text.
local function publish_pending(self)
  if self.publishing then return end
  self.publishing = true
  while self.pending and not self.stopped do
    local text = self.pending
    if publish(self, text) then
      if self.pending == text then self.pending = nil end
    else
      async.sleep(2)
    end
  end
  self.publishing = false
end

-- The last revisions this instance applied from others (their shared sections' hashes):
-- the reload an applied revision causes may read the file after a newer one was applied
-- in memory but before it is written, and must not take that content for a change made
-- here (it would publish it as the newest revision, undoing the newer one everywhere).
local APPLIED = 8
local function remember(self, rev)
  local list = self.applied
  list[#list + 1] = rev
  if #list > APPLIED then table.remove(list, 1) end
end

local function applied_here(self, rev)
  for _, r in ipairs(self.applied) do
    if r == rev then return true end
  end
  return false
end

-- A message from the channel or :latest. Runs one at a time (self.busy); a newer message
-- arriving meanwhile waits in self.next.
local function receive(self, gw, payload)
  local m = json.decode(payload)
  if type(m) ~= "table" or m.v ~= 1 or type(m.seq) ~= "number" or m.seq ~= math.floor(m.seq) or m.seq < 1
    or type(m.origin) ~= "string" or type(m.box) ~= "string" then
    events:inc(1, "refused")
    return log.warn("cluster: refused a malformed message on " .. self.channel)
  end
  if m.origin == self.id then return end
  if m.seq <= self.seq then
    -- Already applied (the :latest read at start-up, say), or a revision older than one
    -- applied here: never goes backwards.
    if m.seq < self.seq then
      events:inc(1, "stale")
      log.debug(("cluster: ignored revision %d from instance %s (at %d here)"):format(m.seq, m.origin, self.seq))
    end
    return
  end
  if self.busy then
    if not self.next or self.next.seq < m.seq then self.next = m end
    return
  end
  local box = smg.crypto.b64decode(m.box)
  local text = box and smg.crypto.aead_open(self.key, box, aad(m.seq, m.origin))
  if not text then
    events:inc(1, "refused")
    return log.warn(("cluster: refused revision %d: it does not open with this instance's gateway.cluster.secret")
      :format(m.seq))
  end
  self.busy = true
  if self.pending then
    log.warn(("cluster: revision %d from instance %s supersedes a change made here while Redis was unreachable "
      .. "(it stays in this config's backups)"):format(m.seq, m.origin))
    self.pending = nil
  end
  local before = self.rev
  self.rev = smg.hash(text) -- before the file changes: the reload that follows publishes nothing
  local doc = before ~= self.rev and text or nil
  local ok, err = persist(self, m.seq, doc)
  self.busy = false
  if ok then
    self.seq = m.seq
    if doc then
      remember(self, self.rev)
      events:inc(1, "applied")
      log.info(("cluster: applied config revision %d from instance %s"):format(m.seq, m.origin))
      require("smg.gateway.reload").request(gw, "cluster revision " .. m.seq)
    end
  else
    self.rev = before
    events:inc(1, "refused")
    log.error(("cluster: revision %d from instance %s not applied: %s"):format(m.seq, m.origin, tostring(err)))
  end
  local nxt = self.next
  self.next = nil
  if nxt and nxt.seq > self.seq then return receive(self, gw, json.encode(nxt)) end
end

-- On every (re)subscription: catch up with :latest, unless a change made here while Redis
-- was away is waiting to be published (it is newer).
local function resync(self, gw)
  if self.pending then return publish_pending(self) end
  local latest = self.cmd:call("GET", self.channel .. ":latest")
  if type(latest) == "string" then receive(self, gw, latest) end
end

-- Starts replication for gateway `gw` when its config asks for it. Returns the state or nil.
function M.start(gw)
  local cfg = gw.cfg
  local c, common = cfg.gateway.cluster, cfg.common_mcp_gateway_config
  if not (c.secret and common.enkrypt_mcp_use_external_cache) or cfg.is_default then return nil end
  local self = { id = smg.random_hex(8), channel = c.channel, path = cfg.source, seq = 0, applied = {},
    key = smg.crypto.hmac_sha256(c.secret, "smg-cluster-config-key-v1"), rev = smg.hash(M.shared_text(cfg.raw)) }
  local saved = json.decode(smg.read_file(state_path(cfg)) or "")
  if type(saved) == "table" and type(saved.seq) == "number" then self.seq = saved.seq end
  local pass = common.enkrypt_cache_password
  local Redis = require "smg.redis"
  local conn = { host = common.enkrypt_cache_host, port = common.enkrypt_cache_port,
    password = pass ~= json.null and pass or nil, db = common.enkrypt_cache_db, timeout = 5 }
  -- Two connections: a subscribed one can carry nothing else.
  self.sub, self.cmd = Redis.new(conn), Redis.new(conn)
  self.sub:subscribe(self.channel, function(payload) receive(self, gw, payload) end,
    function() resync(self, gw) end)
  log.info(("cluster: config replication on %s (instance %s, revision %d)"):format(self.channel, self.id, self.seq))
  return self
end

-- After a successful reload: a change of the shared sections made here is published (not
-- what a revision from another instance wrote, nor a file read while one is being
-- written: the reload after that write sees its result).
function M.changed(self, gw)
  local text = M.shared_text(gw.cfg.raw)
  local rev = smg.hash(text)
  if rev == self.rev or self.busy or applied_here(self, rev) then return end
  self.rev, self.pending = rev, text
  async.spawn(publish_pending, self)
end

function M.stop(self)
  if not self then return end
  self.stopped = true
  self.sub:close()
  self.cmd:close()
end

return M
