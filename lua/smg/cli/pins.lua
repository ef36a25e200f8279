-- `smg pins list|approve|reject`: the pins of what upstreams offer (smg.pins; tool_scan
-- makes them): list them, and decide on the pending ones. Decisions are written to the
-- pins file under a lock and atomically; a running gateway rereads the file and applies
-- them at once (sessions are told their lists changed).
local smg = require "smg"
local core = require "smg.core"
local config = require "smg.config"
local pins = require "smg.pins"

local json = smg.json

local function file_of(ctx)
  local cfg, errs, source = config.load({ path = ctx.path })
  if not cfg then return nil, (source or "config") .. " is invalid: " .. table.concat(errs, "; ") end
  local file = config.pins_path(cfg)
  if not file then return nil, "no place to keep pins (set gateway.pins_path)" end
  return file
end

local function list_text(list)
  if #list == 0 then return "no pins" end
  local lines = {}
  for i, r in ipairs(list) do
    lines[i] = ("%-9s %s%s%s"):format(r.status, pins.id(r), r.reason and r.status == "pending" and ("  (" .. r.reason .. ")")
      or "", r.poisoned and ("  poisoned: " .. r.poisoned) or "")
  end
  return table.concat(lines, "\n")
end

local function decide(verb)
  return function(opts, ctx)
    local names = {}
    for _, n in ipairs(opts) do names[#names + 1] = n end
    for n in (opts.ids or ""):gmatch("[^,%s]+") do names[#names + 1] = n end
    if not opts.all and #names == 0 then return nil, "name SERVER/TOOL or SERVER/KIND:NAME, or --all", 2 end
    local file, ferr = file_of(ctx)
    if not file then return nil, ferr end
    local lock, lerr = core.lock_file(file .. ".lock")
    if not lock then return nil, lerr end
    local ok, res, err = pcall(function()
      local recs, rerr = pins.read(file)
      if not recs then return nil, rerr end
      local want = {}
      for _, n in ipairs(names) do want[n] = true end
      local changed = json.array({})
      for _, r in pairs(recs) do
        local id = pins.id(r)
        if want[id] or (opts.all and r.status == "pending") then
          want[id] = nil
          if verb == "approve" then
            r.fingerprint = r.pending or r.fingerprint
            r.status, r.pending, r.reason = "approved", nil, nil
          else
            r.status = "rejected"
          end
          r.decided = smg.now() -- a decision: newer than anything the gateway holds of this pin
          changed[#changed + 1] = id
        end
      end
      local missing = next(want)
      if missing then return nil, ("no pin named %s in %s"):format(missing, file) end
      local wok, werr = core.write_durable(file, pins.encode(recs))
      if not wok then return nil, werr end
      table.sort(changed)
      return { decided = verb .. "d", pins = changed, file = file }
    end)
    core.close_fd(lock)
    if not ok then return nil, tostring(res) end
    return res, err
  end
end

local DECIDE_FLAGS = { { "--all", boolean = true, help = "every pending pin" },
  { "--ids", help = "pin ids, comma-separated (besides the ones named as arguments)" } }

local C = {}

C.list = { flags = {}, any_config = true, help = "The pins of tools, prompts, resources, templates and instructions", text = list_text,
  run = function(_, ctx)
    local file, ferr = file_of(ctx)
    if not file then return nil, ferr end
    local recs, err = pins.read(file)
    if not recs then return nil, err end
    local list = json.array({})
    for _, r in pairs(recs) do list[#list + 1] = r end
    table.sort(list, function(a, b) return pins.id(a) < pins.id(b) end)
    return list
  end }

C.approve = { flags = DECIDE_FLAGS, any_config = true, positional = "ID...", many = true,
  help = "Take pending items' current definitions as approved (a running gateway applies it at once)",
  text = function(v) return ("approved %d pin(s) in %s"):format(#v.pins, v.file) end, run = decide("approve") }

C.reject = { flags = DECIDE_FLAGS, any_config = true, positional = "ID...", many = true,
  help = "Keep items hidden and their use refused, whatever they become",
  text = function(v) return ("rejected %d pin(s) in %s"):format(#v.pins, v.file) end, run = decide("reject") }

return { summary = "Pins: approve or reject what upstreams changed or added after first sight.", commands = C }
