#!/usr/bin/env bash
# The two eras' passthrough tools/call in instructions per call, under callgrind: unlike
# calls/s on a shared 2-core machine (runs of the same binary differ by 15 % and more),
# the count repeats within about 3 % (what moves it is which traces LuaJIT compiles). smg
# fronts the C echo upstream as bench/run.sh's rows do; each era gets a warm-up (so the
# JIT has compiled the path), then N calls are counted. Not a test: a benchmark.
#   bench/era_instructions.sh [CALLS=3000]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
calls=${1:-3000}
command -v valgrind >/dev/null || { echo "bench: valgrind is needed (apt-get install valgrind)" >&2; exit 1; }
SMG=$root/build-bench/smg UP=$root/build-bench/echo_upstream
[ -x "$SMG" ] && [ -x "$UP" ] || { cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null; cmake --build build-bench -j"$(nproc)" >/dev/null; }
work=$(mktemp -d)
pid=""
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; rm -rf "$work"' EXIT

count() { # era -> instructions per call
  local era=$1 port sid=""
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  cat > "$work/smg.json" <<CFG
{ "common_mcp_gateway_config": { "enkrypt_log_level": "WARN" },
  "mcp_configs": { "b": { "mcp_config": [ { "server_name": "echo", "config": { "command": "$UP" } } ] } },
  "gateway": { "mode": "passthrough", "port": $port, "mcp_config_id": "b" } }
CFG
  valgrind --tool=callgrind --smc-check=all-non-file --instr-atstart=no --callgrind-out-file="$work/cg-$era.out" \
    "$SMG" serve --config "$work/smg.json" 2>"$work/smg-$era.log" &
  pid=$!
  for _ in $(seq 300); do (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  local url="http://127.0.0.1:$port/mcp"
  if [ "$era" = 2025 ]; then
    sid=$(curl -s -D - -o /dev/null -X POST "$url" -H 'Content-Type: application/json' \
      -H 'Accept: application/json, text/event-stream' \
      -d '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}' \
      | awk 'tolower($1)=="mcp-session-id:" {print $2}' | tr -d '\r')
    curl -s -o /dev/null -X POST "$url" -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
      -H "Mcp-Session-Id: $sid" -H 'MCP-Protocol-Version: 2025-06-18' -d '{"jsonrpc":"2.0","method":"notifications/initialized"}'
  fi
  node bench/era_calls.mjs "$url" 1500 "$era" "$sid"
  callgrind_control -i on "$pid" >/dev/null 2>&1
  node bench/era_calls.mjs "$url" "$calls" "$era" "$sid"
  callgrind_control -i off "$pid" >/dev/null 2>&1
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
  pid=""
  local total
  total=$(callgrind_annotate "$work/cg-$era.out" 2>/dev/null | awk '/PROGRAM TOTALS/ {gsub(",", "", $1); print $1}')
  echo $((total / calls))
}

i25=$(count 2025)
i26=$(count 2026)
echo "instructions per passthrough tools/call, $calls calls at concurrency 4 after a warm-up:" \
  "2025 session $i25, 2026 stateless $i26; as a throughput ratio (2026/2025) $(awk -v a="$i25" -v b="$i26" 'BEGIN { printf "%.2f", a / b }')"
