-- `smg user ...`: the seed's sixteen user commands (users, their project memberships and
-- their API keys), each one change through the config store. API keys are masked in the
-- output unless --show-secrets; a new or rotated key is printed once, whole.
local smg = require "smg"
local cli = require "smg.cli"
local store = require "smg.store"
local model = require "smg.cli.model"

local json = smg.json

local USER = { { "--user-id", help = "the user's id" }, { "--email", help = "the user's email" } }
local WHO = { { "--user-id", "--email" } }
local PROJECT = { { "--project-name", help = "the project's name" }, { "--project-id", help = "the project's id" } }
local KEY = { { "--api-key", required = true, help = "the API key" } }

local function flags(...)
  local out = {}
  for _, list in ipairs({ ... }) do for _, f in ipairs(list) do out[#out + 1] = f end end
  return out
end

local function valid_email(e)
  return type(e) == "string" and #e <= 254 and e:match("^[^@%s]+@[^@%s]+%.[^@%s%.]+$") ~= nil
end

local function user_view(doc, id, u)
  return { user_id = id, email = u.email, created_at = u.created_at, projects = json.array(model.projects_of(doc, id)) }
end

local function key_view(ctx, doc, key, e)
  local p = (doc.projects or {})[e.project_id]
  local u = (doc.users or {})[e.user_id]
  return { api_key = cli.key_out(ctx, key), project_id = e.project_id, project_name = p and p.project_name,
    user_id = e.user_id, email = u and u.email, created_at = e.created_at, disabled = e.disabled == true,
    rotated_from = e.rotated_from }
end

local function keys_view(ctx, doc, keys)
  local out = json.array({})
  for i, k in ipairs(keys) do out[i] = key_view(ctx, doc, k, doc.apikeys[k]) end
  return out
end

local function users_text(list)
  if #list == 0 then return "no users" end
  local lines = {}
  for i, u in ipairs(list) do lines[i] = ("%s  %s"):format(u.user_id, u.email) end
  return table.concat(lines, "\n")
end

local function keys_text(list)
  if #list == 0 then return "no API keys" end
  local lines = {}
  for i, k in ipairs(list) do
    lines[i] = ("%s  user %s  project %s%s"):format(k.api_key, tostring(k.email or k.user_id),
      tostring(k.project_name or k.project_id), k.disabled and "  (disabled)" or "")
  end
  return table.concat(lines, "\n")
end

local function read(ctx)
  return store.read(ctx.path)
end

local C = {}

C.list = { flags = {}, help = "List users", text = users_text, run = function(_, ctx)
  local doc, err = read(ctx)
  if not doc then return nil, err end
  local out = json.array({})
  for id, u in pairs(doc.users or {}) do out[#out + 1] = user_view(doc, id, u) end
  table.sort(out, function(a, b) return tostring(a.email) < tostring(b.email) end)
  return out
end }

C.create = { flags = { { "--email", required = true, help = "the new user's email" } }, help = "Create a user",
  text = function(v) return "user_id: " .. v.user_id end, run = function(opts, ctx)
  if not valid_email(opts.email) then return nil, ("not an email address: %s"):format(opts.email), 2 end
  return store.update(ctx.path, function(doc)
    doc.users = doc.users or {}
    for _, u in pairs(doc.users) do
      if type(u) == "table" and tostring(u.email):lower() == opts.email:lower() then
        return nil, ("a user with email %s exists"):format(opts.email)
      end
    end
    local id = cli.uuid()
    doc.users[id] = { email = opts.email, created_at = cli.now_iso() }
    return { user_id = id, email = opts.email }
  end)
end }

C.get = { flags = USER, one_of = WHO, help = "Show a user, with projects and API keys", run = function(opts, ctx)
  local doc, err = read(ctx)
  if not doc then return nil, err end
  local id, u = model.user(doc, opts)
  if not id then return nil, u end
  local v = user_view(doc, id, u)
  v.api_keys = keys_view(ctx, doc, model.keys(doc, function(_, e) return e.user_id == id end))
  return v
end }

C.update = { flags = flags(USER, { { "--new-email", required = true, help = "the new email" } }), one_of = WHO,
  help = "Change a user's email", text = function(v) return "updated user " .. v.user_id end, run = function(opts, ctx)
  if not valid_email(opts.new_email) then return nil, ("not an email address: %s"):format(opts.new_email), 2 end
  return store.update(ctx.path, function(doc)
    local id, u = model.user(doc, opts)
    if not id then return nil, u end
    for other, x in pairs(doc.users) do
      if other ~= id and type(x) == "table" and tostring(x.email):lower() == opts.new_email:lower() then
        return nil, ("a user with email %s exists"):format(opts.new_email)
      end
    end
    u.email = opts.new_email
    return { user_id = id, email = u.email }
  end)
end }

C.delete = { flags = flags(USER, { { "--force", boolean = true, help = "also delete its API keys and memberships" } }),
  one_of = WHO, help = "Delete a user (--force: with its API keys and project memberships)",
  text = function(v) return ("deleted user %s (%d API keys, %d memberships)"):format(v.user_id, v.api_keys, v.projects) end,
  run = function(opts, ctx)
  return store.update(ctx.path, function(doc)
    local id, u = model.user(doc, opts)
    if not id then return nil, u end
    local keys = model.keys(doc, function(_, e) return e.user_id == id end)
    local member = model.projects_of(doc, id)
    if (#keys > 0 or #member > 0) and not opts.force then
      return nil, ("user %s has %d API key(s) and %d project membership(s); --force deletes them too"):format(
        u.email, #keys, #member)
    end
    for _, k in ipairs(keys) do doc.apikeys[k] = nil end
    for _, m in ipairs(member) do
      local list = doc.projects[m.project_id].users
      for i = #list, 1, -1 do if list[i] == id then table.remove(list, i) end end
    end
    doc.users[id] = nil
    return { user_id = id, api_keys = #keys, projects = #member }
  end)
end }

C["list-projects"] = { flags = USER, one_of = WHO, help = "The projects a user belongs to", run = function(opts, ctx)
  local doc, err = read(ctx)
  if not doc then return nil, err end
  local id, u = model.user(doc, opts)
  if not id then return nil, u end
  return json.array(model.projects_of(doc, id))
end }

C["generate-api-key"] = { flags = flags(USER, PROJECT), one_of = { WHO[1], { "--project-name", "--project-id" } },
  help = "Make an API key for a user in a project (the user must be a member)",
  text = function(v) return "api_key: " .. v.api_key end, run = function(opts, ctx)
  return store.update(ctx.path, function(doc)
    local uid, u = model.user(doc, opts)
    if not uid then return nil, u end
    local pid, p = model.project(doc, opts)
    if not pid then return nil, p end
    if not model.has(p.users, uid) then
      return nil, ("user %s is not in project %s (smg project add-user)"):format(u.email, tostring(p.project_name))
    end
    local key = cli.new_api_key()
    doc.apikeys = doc.apikeys or {}
    doc.apikeys[key] = { project_id = pid, user_id = uid, created_at = cli.now_iso() }
    return { api_key = key, project_id = pid, user_id = uid }
  end)
end }

C["list-api-keys"] = { flags = flags(USER, PROJECT), one_of = WHO, help = "A user's API keys (in one project)",
  text = keys_text, run = function(opts, ctx)
  local doc, err = read(ctx)
  if not doc then return nil, err end
  local uid, u = model.user(doc, opts)
  if not uid then return nil, u end
  local pid
  if opts.project_name or opts.project_id then
    local p
    pid, p = model.project(doc, opts)
    if not pid then return nil, p end
  end
  return keys_view(ctx, doc, model.keys(doc, function(_, e) return e.user_id == uid and (not pid or e.project_id == pid) end))
end }

C["list-all-api-keys"] = { flags = {}, help = "Every API key", text = keys_text, run = function(_, ctx)
  local doc, err = read(ctx)
  if not doc then return nil, err end
  return keys_view(ctx, doc, model.keys(doc, function() return true end))
end }

C["delete-all-api-keys"] = { flags = USER, one_of = WHO, help = "Delete all of a user's API keys",
  text = function(v) return ("deleted %d API key(s)"):format(v.deleted) end, run = function(opts, ctx)
  return store.update(ctx.path, function(doc)
    local uid, u = model.user(doc, opts)
    if not uid then return nil, u end
    local keys = model.keys(doc, function(_, e) return e.user_id == uid end)
    for _, k in ipairs(keys) do doc.apikeys[k] = nil end
    return { user_id = uid, deleted = #keys }
  end)
end }

-- The key commands: the key travels in a flag and is found by a constant-time compare.
local function find_key(doc, key)
  local match
  for k in pairs(doc.apikeys or {}) do
    if smg.secure_equal(k, key) then match = k end
  end
  return match
end

local function key_change(verb, change)
  return function(opts, ctx)
    return store.update(ctx.path, function(doc)
      local k = find_key(doc, opts.api_key)
      if not k then return nil, "no such API key" end
      return change(doc, k, ctx)
    end)
  end
end

C["get-api-key"] = { flags = KEY, help = "Show an API key's project and user", run = function(opts, ctx)
  local doc, err = read(ctx)
  if not doc then return nil, err end
  local k = find_key(doc, opts.api_key)
  if not k then return nil, "no such API key" end
  return key_view(ctx, doc, k, doc.apikeys[k])
end }

C["rotate-api-key"] = { flags = KEY, help = "Replace an API key with a new one (the old one stops working)",
  text = function(v) return "new_api_key: " .. v.new_api_key end, run = key_change("rotate", function(doc, k)
    local e = doc.apikeys[k]
    local new = cli.new_api_key()
    doc.apikeys[new] = { project_id = e.project_id, user_id = e.user_id, created_at = cli.now_iso(),
      disabled = e.disabled, rotated_from = smg.mask(k) }
    doc.apikeys[k] = nil
    return { new_api_key = new, rotated_from = smg.mask(k) }
  end) }

local function set_disabled(flag)
  return key_change(flag and "disable" or "enable", function(doc, k, ctx)
    doc.apikeys[k].disabled = flag or nil
    return { api_key = cli.key_out(ctx, k), disabled = flag }
  end)
end

C["disable-api-key"] = { flags = KEY, help = "Stop an API key working (it is kept)",
  text = function(v) return "disabled " .. v.api_key end, run = set_disabled(true) }
C["enable-api-key"] = { flags = KEY, help = "Let a disabled API key work again",
  text = function(v) return "enabled " .. v.api_key end, run = set_disabled(false) }

C["delete-api-key"] = { flags = KEY, help = "Delete an API key",
  text = function(v) return "deleted " .. v.api_key end, run = key_change("delete", function(doc, k, ctx)
    doc.apikeys[k] = nil
    return { api_key = cli.key_out(ctx, k) }
  end) }

C.search = { flags = { { "--search-term", required = true, help = "text to look for in ids and emails" } },
  help = "Find users by id or email", text = users_text, run = function(opts, ctx)
  local doc, err = read(ctx)
  if not doc then return nil, err end
  local term = opts.search_term:lower()
  local out = json.array({})
  for id, u in pairs(doc.users or {}) do
    if type(u) == "table" and (id:lower():find(term, 1, true) or tostring(u.email):lower():find(term, 1, true)) then
      out[#out + 1] = user_view(doc, id, u)
    end
  end
  table.sort(out, function(a, b) return tostring(a.email) < tostring(b.email) end)
  return out
end }

return { summary = "Users, their project memberships and their API keys.", commands = C }
