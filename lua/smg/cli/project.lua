-- `smg project ...`: the seed's thirteen project commands: projects, the mcp_config each
-- one uses, and its users. Each change goes through the config store.
local smg = require "smg"
local core = require "smg.core"
local cli = require "smg.cli"
local store = require "smg.store"
local model = require "smg.cli.model"

local json = smg.json

local PROJECT = { { "--project-name", help = "the project's name" }, { "--project-id", help = "the project's id" } }
local WHICH = { "--project-name", "--project-id" }
local USER = { { "--user-id", help = "the user's id" }, { "--email", help = "the user's email" } }
local CONFIG = { { "--config-name", help = "the mcp_config's name" }, { "--config-id", help = "the mcp_config's id" } }

local function flags(...)
  local out = {}
  for _, list in ipairs({ ... }) do for _, f in ipairs(list) do out[#out + 1] = f end end
  return out
end

local function project_view(doc, id, p)
  local users = json.array({})
  for _, uid in ipairs(p.users or {}) do
    local u = (doc.users or {})[uid]
    users[#users + 1] = { user_id = uid, email = u and u.email }
  end
  local c = p.mcp_config_id and (doc.mcp_configs or {})[p.mcp_config_id]
  return { project_id = id, project_name = p.project_name, mcp_config_id = p.mcp_config_id,
    mcp_config_name = c and c.mcp_config_name, users = users, created_at = p.created_at }
end

local function projects_text(list)
  if #list == 0 then return "no projects" end
  local lines = {}
  for i, p in ipairs(list) do
    lines[i] = ("%s  %s  config %s  %d user(s)"):format(p.project_id, tostring(p.project_name),
      tostring(p.mcp_config_name or p.mcp_config_id or "-"), #p.users)
  end
  return table.concat(lines, "\n")
end

local function all_projects(doc, keep)
  local out = json.array({})
  for id, p in pairs(doc.projects or {}) do
    if type(p) == "table" and (not keep or keep(id, p)) then out[#out + 1] = project_view(doc, id, p) end
  end
  table.sort(out, function(a, b) return tostring(a.project_name) < tostring(b.project_name) end)
  return out
end

-- A read-only command on one project: fn(doc, id, project) -> value.
local function reading(fn)
  return function(opts, ctx)
    local doc, err = store.read(ctx.path)
    if not doc then return nil, err end
    local id, p = model.project(doc, opts)
    if not id then return nil, p end
    return fn(doc, id, p, opts, ctx)
  end
end

-- A change to one project: fn(doc, id, project, opts) -> value | nil, err.
local function changing(fn)
  return function(opts, ctx)
    return store.update(ctx.path, function(doc)
      local id, p = model.project(doc, opts)
      if not id then return nil, p end
      return fn(doc, id, p, opts)
    end)
  end
end

local C = {}

C.list = { flags = {}, help = "List projects", text = projects_text, run = function(_, ctx)
  local doc, err = store.read(ctx.path)
  if not doc then return nil, err end
  return all_projects(doc)
end }

C.create = { flags = { { "--project-name", required = true, help = "the new project's name" } }, help = "Create a project",
  text = function(v) return "project_id: " .. v.project_id end, run = function(opts, ctx)
  if opts.project_name == "" then return nil, "--project-name is empty", 2 end
  return store.update(ctx.path, function(doc)
    doc.projects = doc.projects or {}
    for _, p in pairs(doc.projects) do
      if type(p) == "table" and p.project_name == opts.project_name then
        return nil, ("a project named %s exists"):format(opts.project_name)
      end
    end
    local id = cli.uuid()
    doc.projects[id] = { project_name = opts.project_name, users = json.array({}), created_at = cli.now_iso() }
    return { project_id = id, project_name = opts.project_name }
  end)
end }

C.get = { flags = PROJECT, one_of = { WHICH }, help = "Show a project", run = reading(project_view) }

C.remove = { flags = PROJECT, one_of = { WHICH }, help = "Delete a project and the API keys made for it",
  text = function(v) return ("removed project %s (%d API key(s))"):format(v.project_id, v.api_keys) end,
  run = changing(function(doc, id)
    local keys = model.keys(doc, function(_, e) return e.project_id == id end)
    for _, k in ipairs(keys) do doc.apikeys[k] = nil end
    doc.projects[id] = nil
    return { project_id = id, api_keys = #keys }
  end) }

C["get-config"] = { flags = PROJECT, one_of = { WHICH }, help = "The mcp_config a project uses",
  run = reading(function(doc, _, p)
    if not p.mcp_config_id then return nil, "the project has no config (smg project assign-config)" end
    local c = (doc.mcp_configs or {})[p.mcp_config_id]
    if not c then return nil, ("the project's config %s does not exist"):format(p.mcp_config_id) end
    return { mcp_config_id = p.mcp_config_id, mcp_config_name = c.mcp_config_name, mcp_config = c.mcp_config }
  end) }

C["assign-config"] = { flags = flags(PROJECT, CONFIG), one_of = { WHICH, { "--config-name", "--config-id" } },
  help = "Make a project use an mcp_config",
  text = function(v) return ("project %s now uses config %s"):format(v.project_id, v.mcp_config_id) end,
  run = changing(function(doc, id, p, opts)
    local cid, c = model.mcp_config(doc, opts)
    if not cid then return nil, c end
    p.mcp_config_id = cid
    return { project_id = id, mcp_config_id = cid, mcp_config_name = c.mcp_config_name }
  end) }

C["unassign-config"] = { flags = PROJECT, one_of = { WHICH }, help = "Make a project use no mcp_config",
  text = function(v) return "unassigned the config of project " .. v.project_id end,
  run = changing(function(_, id, p)
    p.mcp_config_id = nil
    return { project_id = id }
  end) }

C["list-users"] = { flags = PROJECT, one_of = { WHICH }, help = "A project's users",
  run = reading(function(doc, id, p) return project_view(doc, id, p).users end) }

C["add-user"] = { flags = flags(PROJECT, USER), one_of = { WHICH, { "--user-id", "--email" } },
  help = "Add a user to a project", text = function(v) return ("added %s to %s"):format(v.user_id, v.project_id) end,
  run = changing(function(doc, id, p, opts)
    local uid, u = model.user(doc, opts)
    if not uid then return nil, u end
    p.users = p.users or json.array({})
    if model.has(p.users, uid) then return nil, ("%s is already in the project"):format(u.email) end
    p.users[#p.users + 1] = uid
    return { project_id = id, user_id = uid }
  end) }

C["remove-user"] = { flags = flags(PROJECT, USER), one_of = { WHICH, { "--user-id", "--email" } },
  help = "Remove a user from a project (and the user's API keys for it)",
  text = function(v) return ("removed %s from %s (%d API key(s))"):format(v.user_id, v.project_id, v.api_keys) end,
  run = changing(function(doc, id, p, opts)
    local uid, u = model.user(doc, opts)
    if not uid then return nil, u end
    if not model.has(p.users, uid) then return nil, ("%s is not in the project"):format(u.email) end
    for i = #p.users, 1, -1 do if p.users[i] == uid then table.remove(p.users, i) end end
    local keys = model.keys(doc, function(_, e) return e.project_id == id and e.user_id == uid end)
    for _, k in ipairs(keys) do doc.apikeys[k] = nil end
    return { project_id = id, user_id = uid, api_keys = #keys }
  end) }

C["remove-all-users"] = { flags = PROJECT, one_of = { WHICH }, help = "Remove every user from a project (and their keys for it)",
  text = function(v) return ("removed %d user(s) and %d API key(s)"):format(v.users, v.api_keys) end,
  run = changing(function(doc, id, p)
    local n = #(p.users or {})
    p.users = json.array({})
    local keys = model.keys(doc, function(_, e) return e.project_id == id end)
    for _, k in ipairs(keys) do doc.apikeys[k] = nil end
    return { project_id = id, users = n, api_keys = #keys }
  end) }

C.export = { flags = flags(PROJECT, { { "--output-file", required = true, help = "where to write the export" } }),
  one_of = { WHICH }, help = "Write a project, its config and its users to a JSON file (0600; no API keys; `-`: print it)",
  text = function(v) return v.output_file and ("exported to " .. v.output_file) or core.json_pretty(json.canonical(v)) end,
  run = reading(function(doc, id, p, opts)
    local v = project_view(doc, id, p)
    local c = p.mcp_config_id and (doc.mcp_configs or {})[p.mcp_config_id]
    v.mcp_config = c
    if opts.output_file == "-" then return v end
    local ok, err = core.write_durable(opts.output_file, store.encode(v))
    if not ok then return nil, err end
    return { project_id = id, output_file = opts.output_file }
  end) }

C.search = { flags = { { "--search-term", required = true, help = "text to look for in ids and names" } },
  help = "Find projects by id or name", text = projects_text, run = function(opts, ctx)
  local doc, err = store.read(ctx.path)
  if not doc then return nil, err end
  local term = opts.search_term:lower()
  return all_projects(doc, function(id, p)
    return id:lower():find(term, 1, true) or tostring(p.project_name):lower():find(term, 1, true)
  end)
end }

return { summary = "Projects: the mcp_config each one uses, and its users.", commands = C }
