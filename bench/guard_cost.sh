#!/usr/bin/env bash
# What guarding a call costs, measured so that machine noise lands on both sides: smg in
# passthrough mode fronting the C echo upstream, unguarded and with the embedded default's
# policy (API-key auth; pii + injection + tool_scan on input, pii + injection on output),
# alternated ROUNDS times at concurrency 1 and 32. Prints each run, then the medians, the
# added median latency at c1 and the guarded/unguarded throughput at c32.
#   bench/guard_cost.sh [ROUNDS=3] [SECONDS=5]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
rounds=${1:-3} secs=${2:-5}
[ -x build-bench/smg ] || { cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null; cmake --build build-bench -j"$(nproc)" >/dev/null; }
SMG=$root/build-bench/smg UP=$root/build-bench/echo_upstream
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
key=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
input='{ "enabled": true, "policy_name": "default", "guardrails": ["pii", "injection", "tool_scan"],
  "block": ["injection_attack", "tool_poisoning", "tool_changed"] }'
output='{ "enabled": true, "policy_name": "default", "guardrails": ["pii", "injection"],
  "block": ["injection_attack", "credential_request"] }'

config() { # $1 plain|guarded, $2 port
  local srv="" top=""
  if [ "$1" = guarded ]; then
    srv=", \"enable_tool_guardrails\": true, \"input_guardrails_policy\": $input, \"output_guardrails_policy\": $output"
    top=", \"plugins\": { \"auth\": { \"provider\": \"local_apikey\" } },
      \"apikeys\": { \"$key\": { \"project_id\": \"p\", \"user_id\": \"u\" } },
      \"projects\": { \"p\": { \"project_name\": \"bench\", \"mcp_config_id\": \"b\", \"users\": [\"u\"] } },
      \"users\": { \"u\": { \"email\": \"bench@example.com\" } }"
  fi
  cat > "$work/$1.json" <<CFG
{ "common_mcp_gateway_config": { "enkrypt_log_level": "WARN" },
  "mcp_configs": { "b": { "mcp_config": [ { "server_name": "echo", "config": { "command": "$UP" } $srv } ] } },
  "gateway": { "mode": "passthrough", "port": $2, "mcp_config_id": "b" } $top }
CFG
}

run() { # $1 plain|guarded, $2 concurrency -> "calls/s p50_us"
  local port pid sid hdr=""
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
  config "$1" "$port"
  [ "$1" = guarded ] && hdr=$key
  "$SMG" serve --config "$work/$1.json" 2>/dev/null &
  pid=$!
  for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.1; done
  sid=$(curl -s -D - -o /dev/null -X POST "http://127.0.0.1:$port/mcp" ${hdr:+-H "apikey: $hdr"} \
    -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    -d '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}' \
    | awk 'tolower($1)=="mcp-session-id:" {print $2}' | tr -d '\r')
  MCP_SESSION=$sid MCP_APIKEY=$hdr wrk -t1 -c32 -d2s -s bench/mcp_call.lua "http://127.0.0.1:$port/mcp" >/dev/null
  MCP_SESSION=$sid MCP_APIKEY=$hdr wrk -t1 -c"$2" -d"${secs}s" --latency -s bench/mcp_call.lua \
    "http://127.0.0.1:$port/mcp" | awk '/Requests\/sec/ {r=$2} $1=="50%" {v=$2; n=v+0; if (v ~ /ms$/) n*=1000; p=n} END {print r, p}'
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
}

median() { sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'; }
declare -A rps p50
for c in 1 32; do
  for r in $(seq "$rounds"); do
    for kind in plain guarded; do
      read -r x y < <(run "$kind" "$c")
      echo "round $r c$c $kind: $x calls/s, p50 ${y} us"
      rps[$kind.$c]+="$x "; p50[$kind.$c]+="$y "
    done
  done
done
m() { tr ' ' '\n' <<<"$1" | grep . | median; }
pp1=$(m "${p50[plain.1]}"); gp1=$(m "${p50[guarded.1]}")
pr32=$(m "${rps[plain.32]}"); gr32=$(m "${rps[guarded.32]}")
echo "medians: c1 p50 ${pp1} us unguarded, ${gp1} us guarded (+$(awk -v a="$gp1" -v b="$pp1" 'BEGIN {print a-b}') us);" \
  "c32 ${pr32} vs ${gr32} calls/s ($(awk -v a="$gr32" -v b="$pr32" 'BEGIN {printf "%.2f", a/b}')x)"
