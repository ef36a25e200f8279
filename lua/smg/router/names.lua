-- Name rules the routers share: allow/deny globs over tool names and URI-template
-- matching. Both run on client-controlled strings, so both are linear-time matchers
-- (the classic one-star-backtrack wildcard walk), never Lua patterns with several `.*`,
-- which backtrack polynomially in the number of stars.
local M = {}

-- Does `s` match `pattern`, where `*` is any run of characters (none included) and every
-- other character is literal? `stop` is a byte `*` may not cross (nil: none).
local function wild(pattern, s, stop)
  local pi, si, np, ns = 1, 1, #pattern, #s
  local star, mark = nil, 0
  while si <= ns do
    local pc = pattern:byte(pi)
    local sc = s:byte(si)
    if pc == 42 then -- '*'
      star, mark = pi, si
      pi = pi + 1
    elseif pc == sc then
      pi, si = pi + 1, si + 1
    elseif star and s:byte(mark) ~= stop then
      -- Let the last star take one more character and retry from there.
      mark = mark + 1
      pi, si = star + 1, mark
    else
      return false
    end
  end
  while pattern:byte(pi) == 42 do pi = pi + 1 end
  return pi > np
end

function M.glob(pattern, s) return wild(pattern, s, nil) end

-- Whether `name` passes a server's allow_tools / deny_tools (globs). Holds in every mode.
function M.allowed(spec, name)
  if type(name) ~= "string" then return false end
  if #spec.allow_tools > 0 then
    local ok = false
    for _, p in ipairs(spec.allow_tools) do
      if wild(p, name, nil) then
        ok = true
        break
      end
    end
    if not ok then return false end
  end
  for _, p in ipairs(spec.deny_tools) do if wild(p, name, nil) then return false end end
  return true
end

-- A URI template (RFC 6570, level 1 as the gateway routes it) as a wildcard pattern:
-- every {expression} matches a run of characters without "/". Literal "*" in a template
-- is rare enough to be matched as a wildcard too.
function M.template(t)
  return (t:gsub("{[^}]*}", "*"):gsub("%*%*+", "*"))
end

function M.template_match(pattern, uri) return wild(pattern, uri, 47) end -- '/'

return M
