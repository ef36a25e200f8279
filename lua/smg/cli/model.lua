-- Lookups over a config document the CLI nouns share: users by id or email, projects by
-- id or name, mcp_configs by id or name, a user's keys and memberships. The seed's rule
-- when both are given: the name wins for configs and projects, the id for users.
local M = {}

local function lower(s) return type(s) == "string" and s:lower() or s end

-- opts: { user_id?, email? } -> id, user | nil, err
function M.user(doc, opts)
  local users = doc.users or {}
  if opts.user_id then
    local u = users[opts.user_id]
    if u then return opts.user_id, u end
    return nil, ("no user with id %s"):format(opts.user_id)
  end
  for id, u in pairs(users) do
    if type(u) == "table" and lower(u.email) == lower(opts.email) then return id, u end
  end
  return nil, ("no user with email %s"):format(tostring(opts.email))
end

-- opts: { project_name?, project_id? } -> id, project | nil, err
function M.project(doc, opts)
  local projects = doc.projects or {}
  if opts.project_name then
    for id, p in pairs(projects) do
      if type(p) == "table" and p.project_name == opts.project_name then return id, p end
    end
    return nil, ("no project named %s"):format(opts.project_name)
  end
  local p = projects[opts.project_id]
  if p then return opts.project_id, p end
  return nil, ("no project with id %s"):format(tostring(opts.project_id))
end

-- opts: { config_name?, config_id? } -> id, mcp_config | nil, err
function M.mcp_config(doc, opts)
  local configs = doc.mcp_configs or {}
  if opts.config_name then
    for id, c in pairs(configs) do
      if type(c) == "table" and c.mcp_config_name == opts.config_name then return id, c end
    end
    return nil, ("no config named %s"):format(opts.config_name)
  end
  local c = configs[opts.config_id]
  if c then return opts.config_id, c end
  return nil, ("no config with id %s"):format(tostring(opts.config_id))
end

-- The projects a user belongs to: sorted list of { project_id, project_name }.
function M.projects_of(doc, user_id)
  local out = {}
  for id, p in pairs(doc.projects or {}) do
    for _, u in ipairs(type(p) == "table" and p.users or {}) do
      if u == user_id then out[#out + 1] = { project_id = id, project_name = p.project_name } end
    end
  end
  table.sort(out, function(a, b) return tostring(a.project_name) < tostring(b.project_name) end)
  return out
end

-- The API keys matching filter(key, entry): sorted list of keys.
function M.keys(doc, filter)
  local out = {}
  for k, e in pairs(doc.apikeys or {}) do
    if type(e) == "table" and filter(k, e) then out[#out + 1] = k end
  end
  table.sort(out)
  return out
end

-- Whether `list` (an array) holds `v`.
function M.has(list, v)
  for _, x in ipairs(list or {}) do if x == v then return true end end
  return false
end

return M
