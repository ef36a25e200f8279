-- MCP protocol revisions this gateway speaks, and what each one changed, as predicates.
-- Code asks "does this session's revision have X?", never compares version strings:
-- adding a revision means adding a row here, not finding every string compare.
local M = {}

-- Newest first. The first is what we offer when a client asks for one we do not speak.
M.SUPPORTED = { "2025-11-25", "2025-06-18", "2025-03-26" }
M.LATEST = M.SUPPORTED[1]

-- Per revision: batches (JSON-RPC arrays, 2025-03-26 only), priming (a POST stream opens
-- with an id-only SSE event, 2025-11-25 on).
local FEATURES = {
  ["2025-11-25"] = { batches = false, priming = true },
  ["2025-06-18"] = { batches = false, priming = false },
  ["2025-03-26"] = { batches = true, priming = false },
}

function M.supported(v) return FEATURES[v] ~= nil end

-- The stateless revisions (mcp/modern.lua): no initialize, per-request _meta.
M.MODERN = { "2026-07-28" }
local MODERN = { ["2026-07-28"] = true }
function M.modern(v) return MODERN[v] == true end

-- Every revision served, newest first (server/discover's supportedVersions).
M.ALL = { "2026-07-28", "2025-11-25", "2025-06-18", "2025-03-26" }

-- What a server answers to initialize: the client's revision when supported, else ours.
function M.negotiate(requested)
  if FEATURES[requested] then return requested end
  return M.LATEST
end

-- JSON-RPC batches in one message (removed again in 2025-06-18).
function M.batches(v)
  local f = FEATURES[v]
  return f ~= nil and f.batches
end

-- SSE priming event at the start of a POST stream (SEP-1699, 2025-11-25).
function M.priming(v)
  local f = FEATURES[v]
  return f ~= nil and f.priming
end

return M
