-- The smg binding, api_version 1: the one documented surface plugins, example servers
-- and the CLI use (docs/plugin-api.md). Within a major version it only grows; api_minor
-- counts the additions (1: guardrail on_message at the pipeline's hook points).
local core = require "smg.core"
local async = require "smg.async"

local smg = {
  api_version = 1,
  api_minor = 2,
  version = core.version,
  stdio_transport = false, -- true under `smg serve --stdio`: stdout carries MCP, not logs
}

---------------------------------------------------------------------------- json
local json = {
  null = core.json_null,
  array_mt = core.json_array_mt,
}
-- decode(str) -> value | nil, err (never raises on bad input, like cjson.safe)
json.decode = core.json_decode
-- encode(value) -> string | nil, err
json.encode = core.json_encode
-- Marks t as a JSON array, so it encodes as [] even when empty.
function json.array(t)
  return setmetatable(t or {}, core.json_array_mt)
end
local ARRAY_MT = core.json_array_mt
function json.is_array(t)
  return getmetatable(t) == ARRAY_MT -- (only tables get it: json.array and the decoder)
end
-- map_strings(v, fn[, arg]) -> a copy of v with every string value (not keys) replaced
-- by fn(s, arg); guardrails use it to scan or rewrite arguments and results (`arg` spares
-- them a closure per call). A value nested deeper than MAX_WALK (beyond anything
-- smg.json.decode returns) raises instead of being skipped: a scanner that stopped early
-- would let deep values through unseen.
local MAX_WALK = 1024
local function too_deep() error("value nested deeper than " .. MAX_WALK .. " levels", 0) end

local function map_strings(v, fn, arg, depth)
  if type(v) == "string" then return fn(v, arg) end
  if type(v) ~= "table" then return v end
  if depth > MAX_WALK then too_deep() end
  local out = {}
  for k, x in pairs(v) do out[k] = map_strings(x, fn, arg, depth + 1) end
  return setmetatable(out, getmetatable(v))
end

function json.map_strings(v, fn, arg) return map_strings(v, fn, arg, 0) end
-- each_string(v, fn): calls fn(s) on every string value, stopping early when it returns true.
function json.each_string(v, fn, depth)
  depth = depth or 0
  if type(v) == "string" then return fn(v) == true end
  if type(v) ~= "table" then return false end
  if depth > MAX_WALK then too_deep() end
  for _, x in pairs(v) do
    if json.each_string(x, fn, depth + 1) then return true end
  end
  return false
end
-- canonical(v): JSON with object keys sorted, so that equal values always encode (and
-- hash) the same: for digests and pins. Arrays are tables marked as such or with a [1].
function json.canonical(v, depth)
  depth = depth or 0
  if type(v) ~= "table" then return json.encode(v) or "null" end
  if depth > MAX_WALK then too_deep() end
  if json.is_array(v) or (next(v) ~= nil and v[1] ~= nil) then
    local parts = {}
    for i = 1, #v do parts[i] = json.canonical(v[i], depth + 1) end
    return "[" .. table.concat(parts, ",") .. "]"
  end
  local keys = {}
  for k in pairs(v) do keys[#keys + 1] = tostring(k) end
  table.sort(keys)
  local parts = {}
  for i, k in ipairs(keys) do
    local x = v[k]
    if x == nil then x = v[tonumber(k)] end
    parts[i] = json.encode(k) .. ":" .. json.canonical(x, depth + 1)
  end
  return "{" .. table.concat(parts, ",") .. "}"
end
-- text(v[, sep]): every string value of v joined with sep ("\n"): what a text-based
-- guardrail API should see of arguments or a result.
function json.text(v, sep)
  local parts = {}
  json.each_string(v, function(s) parts[#parts + 1] = s end)
  return table.concat(parts, sep or "\n")
end
smg.json = json

-- find_near(text, lead, pattern[, window]) -> true | false: whether `pattern` matches
-- right at one of the (first 200) plain occurrences of `lead`, within `window` (256)
-- bytes. For patterns with an unbounded run in the middle, which text:find would retry
-- from every position: quadratic on crafted input.
function smg.find_near(text, lead, pattern, window)
  window = window or 256
  local anchored = "^" .. pattern
  local init = 1
  for _ = 1, 200 do
    local at = text:find(lead, init, true)
    if not at then return false end
    if text:sub(at, at + window - 1):find(anchored) then return true end
    init = at + 1
  end
  return false
end

-- read_file(path) -> contents | nil, err. Synchronous: for load time and small local
-- files (a JWKS file, a key), never for data on a request's path.
function smg.read_file(path)
  local f, err = io.open(path, "rb")
  if not f then return nil, err end
  local data = f:read("*a")
  f:close()
  return data
end

-- open_private(path, mode) -> file | nil, err: every file smg writes is opened this way.
-- mode "a" (append) or "w" (truncate). The file is created 0600 (owner only), a symbolic
-- link at `path` is refused, and so is anything but a regular file. A file that already
-- exists keeps its mode; one readable by others is reported in the log.
function smg.open_private(path, mode)
  assert(mode == "a" or mode == "w", "mode must be \"a\" or \"w\"")
  local fd, bits = core.open_private(path, mode == "w")
  if not fd then return nil, bits end
  -- The same inode, whatever `path` names by now: no window to swap in a link.
  local f, err = io.open("/proc/self/fd/" .. fd, mode)
  core.close_fd(fd)
  if not f then return nil, path .. ": " .. tostring(err) end
  if require("bit").band(bits, 7) ~= 0 then
    smg.log.warn(("%s can be read or written by other users (mode %o); smg creates its files 0600"):format(path, bits))
  end
  return f
end

---------------------------------------------------------------------------- masking
local SECRET_KEYS = { "token", "key", "secret", "password", "passwd", "auth", "credential",
  "cookie", "session", "bearer", "private" }

-- mask("abcd1234efgh") -> "****efgh": keeps at most the last 4 characters of long values.
function smg.mask(s)
  if s == nil then return nil end
  s = tostring(s)
  if #s < 12 then return "****" end
  return "****" .. s:sub(-4)
end

local function is_secret_key(k)
  k = tostring(k):lower()
  for i = 1, #SECRET_KEYS do
    if k:find(SECRET_KEYS[i], 1, true) then return true end
  end
  return false
end
smg.is_secret_key = is_secret_key

-- Copy of a table with the values under secret-looking keys masked, recursively.
function smg.mask_table(t, depth)
  depth = depth or 0
  if type(t) ~= "table" or depth > 20 then return t end
  local out = {}
  for k, v in pairs(t) do
    if type(v) == "table" then
      out[k] = smg.mask_table(v, depth + 1)
    elseif type(k) == "string" and is_secret_key(k) and type(v) ~= "boolean" then
      out[k] = smg.mask(v)
    else
      out[k] = v
    end
  end
  return setmetatable(out, getmetatable(t))
end

---------------------------------------------------------------------------- logging
local LEVELS = { debug = 0, info = 1, warn = 2, error = 3 }
local log = {}
for name, level in pairs(LEVELS) do
  log[name] = function(msg, fields)
    if fields ~= nil then
      local enc = json.encode(smg.mask_table(fields))
      msg = tostring(msg) .. " " .. (enc or "{}")
    end
    core.log(level, tostring(msg))
  end
end
function log.level(name)
  return core.log_level(name)
end
smg.log = log

---------------------------------------------------------------------------- time
smg.now = require("smg.async").now -- wall clock, seconds (float)
smg.monotime = require("smg.async").hrtime -- monotonic, seconds (float)
smg.sleep = async.sleep      -- yields
smg.spawn = async.spawn
smg.future = async.future
-- timer(seconds, fn[, repeat_seconds]) -> handle with :stop(), :close()
function smg.timer(seconds, fn, repeat_seconds)
  return core.timer(seconds * 1000, (repeat_seconds or 0) * 1000, fn)
end

---------------------------------------------------------------------------- hashing
function smg.hash(s)
  return core.hex(core.sha256(s))
end
function smg.random_hex(nbytes)
  return core.hex(core.random_bytes(nbytes or 16))
end
smg.secure_equal = core.secure_equal

---------------------------------------------------------------------------- cache, metrics, crypto
smg.cache = require "smg.cache"
smg.text = require "smg.text"
smg.pins = require "smg.pins"
-- checkpoint(): inside long CPU work, let the loop run; raises once the hook's time
-- budget is spent (see docs/plugin-api.md).
smg.checkpoint = async.checkpoint
-- redis.new{host, port, password, db, timeout} -> client; client:call("GET", k) yields.
smg.redis = { new = function(opts) return require("smg.redis").new(opts) end }

-- counter(name, help, labels) / gauge(...) / histogram(name, help, labels, buckets):
-- registered once, shown on GET /metrics. m:inc(n, label values...), m:set(v, ...),
-- m:observe(v, ...).
local metrics = require "smg.metrics"
smg.metrics = { counter = metrics.counter, gauge = metrics.gauge, histogram = metrics.histogram }

smg.crypto = {
  sha256 = core.sha256,           -- raw digest
  hmac_sha256 = core.hmac_sha256, -- raw digest
  -- aead_seal(key32, plaintext[, aad]) -> box; aead_open(key32, box[, aad]) -> plaintext |
  -- nil, err. AES-256-GCM; box = nonce(12) .. ciphertext .. tag(16); aad authenticated only.
  aead_seal = core.aead_seal,
  aead_open = core.aead_open,
  b64encode = function(s) return core.b64encode(s, false) end,
  b64url_encode = function(s) return core.b64encode(s, true) end,
  b64decode = core.b64decode,     -- either alphabet, padding optional; nil when malformed
  -- sign_jws(alg, pem_private_key, signing_input) -> signature | nil, err (RS256/384/512,
  -- PS256, ES256/384; ECDSA as r || s, as JWS wants it).
  sign_jws = core.sign,
  -- verify_jws(alg, jwk, signing_input, signature) -> true | false, reason. jwk components
  -- (n, e / x, y) base64url-encoded as in a JWKS document.
  verify_jws = function(alg, jwk, data, sig)
    local k = { kty = jwk.kty }
    for _, f in ipairs({ "n", "e", "x", "y" }) do
      if jwk[f] then
        k[f] = core.b64decode(jwk[f])
        if not k[f] then return false, "malformed key component " .. f end
      end
    end
    return core.verify(alg, k, data, sig)
  end,
}

-- smg.config: a read-only view of the running config (API keys left out, secret-looking
-- values masked); replaced on every reload.
local function read_only(t)
  if type(t) ~= "table" then return t end
  local proxy = {}
  for k, v in pairs(t) do proxy[k] = read_only(v) end
  -- (LuaJIT without 5.2 compatibility ignores __pairs and __len: index it, don't iterate.)
  return setmetatable({}, {
    __index = proxy,
    __newindex = function() error("smg.config is read-only", 2) end,
  })
end
smg.config = read_only({})
function smg._set_config(cfg)
  local view = {}
  for k, v in pairs(cfg) do
    if k ~= "apikeys" and k ~= "raw" and k ~= "ephemeral_key" then view[k] = v end
  end
  smg.config = read_only(smg.mask_table(view))
end

---------------------------------------------------------------------------- http client
local http = {}

local function parse_headers(raw)
  local h = {}
  for line in raw:gmatch("[^\r\n]+") do
    local k, v = line:match("^([^:]+):%s*(.-)%s*$")
    if k then
      k = k:lower()
      h[k] = h[k] and (h[k] .. ", " .. v) or v
    end
  end
  return h
end
http.parse_headers = parse_headers

local function header_list(headers)
  local list = {}
  if headers then
    for k, v in pairs(headers) do list[#list + 1] = k .. ": " .. tostring(v) end
  end
  return list
end
http.header_list = header_list

-- request{method, url, headers = {k = v}, body, timeout (s), max_response (bytes),
--   client_cert, client_key (PEM files: mutual TLS), ca_file (PEM: the CAs to trust),
--   public_only (refuse loopback, private and link-local addresses: URLs a remote chose)}
--   -> {status, headers, body} | nil, err. Yields.
local active = setmetatable({}, { __mode = "k" }) -- call -> coroutine waiting on it

function http.request(opts)
  local co = async.current()
  local resp = { status = 0, headers = {}, body = nil }
  local chunks = {}
  local call, err
  call, err = core.http_request({
    method = opts.method or "GET",
    url = opts.url,
    headers = header_list(opts.headers),
    body = opts.body,
    timeout_ms = (opts.timeout or 30) * 1000,
    max_response = opts.max_response or 64 * 1024 * 1024,
    client_cert = opts.client_cert, client_key = opts.client_key, ca_file = opts.ca_file,
    public_only = opts.public_only,
  }, function(status, raw)
    resp.status = status
    resp.headers = parse_headers(raw)
  end, function(chunk)
    chunks[#chunks + 1] = chunk
  end, function(e)
    if call then active[call] = nil end
    if e then
      async.resume(co, nil, e)
    else
      resp.body = table.concat(chunks)
      async.resume(co, resp)
    end
  end)
  if not call then return nil, err end
  active[call] = co
  return coroutine.yield()
end

-- Cancels every request in flight; each waiting caller gets nil, reason. The gateway
-- calls it last at shutdown so that a plugin's hanging request cannot hold the process.
function http.cancel_all(reason)
  local list = {}
  for c, co in pairs(active) do list[#list + 1] = { c, co } end
  for _, e in ipairs(list) do
    active[e[1]] = nil
    e[1]:cancel()
    async.resume(e[2], nil, reason or "cancelled")
  end
  return #list
end
smg.http = http

return smg
