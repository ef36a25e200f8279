#!/usr/bin/env bash
# Load benchmark (not a test): wrk drives MCP tools/call over Streamable HTTP against
#   - nginx answering the same POST with a static 200 (the ceiling for any HTTP server here),
#   - smg in passthrough mode fronting the C echo upstream (bench/echo_upstream.c),
#   - supergateway (a Node peer gateway from npm) fronting the same upstream,
# and pipe_bench drives the upstream directly over its pipes. Prints one table:
# calls/s, p50, p99 at concurrency 1 and 32, RSS idle and under load.
# Everything listens on 127.0.0.1 and stops by itself.
#   bench/run.sh [SECONDS_PER_RUN]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
secs=${1:-8}
bash scripts/bootstrap.sh >/dev/null
cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-bench -j"$(nproc)" >/dev/null
SMG=$root/build-bench/smg
UP=$root/build-bench/echo_upstream
work=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$work"
}
trap cleanup EXIT
apikey="" # set for the guarded row: sent as the apikey header by curl and wrk

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status" 2>/dev/null || echo 0; }
wait_port() { for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$1") 2>/dev/null && return 0; sleep 0.1; done; return 1; }

# Opens an MCP session with a real initialize; prints the session id (may be empty).
# With MODERN=1 (2026-07-28, stateless) there is none to open.
open_session() {
  local url=$1
  [ "${MODERN:-}" = 1 ] && return 0
  local sid
  sid=$(curl -s -D - -o /dev/null -X POST "$url" -H 'Content-Type: application/json' \
    -H 'Accept: application/json, text/event-stream' ${apikey:+-H "apikey: $apikey"} \
    -d '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"bench","version":"1"}}}' \
    | awk 'tolower($1)=="mcp-session-id:" {print $2}' | tr -d '\r')
  curl -s -o /dev/null -X POST "$url" -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    ${apikey:+-H "apikey: $apikey"} ${sid:+-H "Mcp-Session-Id: $sid"} -H 'MCP-Protocol-Version: 2025-06-18' -d '{"jsonrpc":"2.0","method":"notifications/initialized"}'
  echo "$sid"
}

# Checks one call answers correctly, so the load measures real work.
check_call() {
  local url=$1 sid=$2
  if [ "${MODERN:-}" = 1 ]; then
    curl -s -X POST "$url" -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
      -H 'MCP-Protocol-Version: 2026-07-28' -H 'Mcp-Method: tools/call' -H 'Mcp-Name: echo' \
      -d '{"jsonrpc":"2.0","id":99,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hello"},"_meta":{"io.modelcontextprotocol/protocolVersion":"2026-07-28","io.modelcontextprotocol/clientCapabilities":{}}}}' \
      | grep -q '"hello"'
    return
  fi
  curl -s -X POST "$url" -H 'Content-Type: application/json' -H 'Accept: application/json, text/event-stream' \
    ${apikey:+-H "apikey: $apikey"} ${sid:+-H "Mcp-Session-Id: $sid"} -H 'MCP-Protocol-Version: 2025-06-18' \
    -d '{"jsonrpc":"2.0","id":99,"method":"tools/call","params":{"name":"echo","arguments":{"message":"hello"}}}' | grep -q '"hello"'
}

# wrk at concurrency $2; prints "calls/s p50_us p99_us errors"
load() {
  local url=$1 c=$2 sid=$3
  local out
  out=$(MCP_MODERN=${MODERN:-0} MCP_SESSION=$sid MCP_APIKEY=$apikey wrk -t1 -c"$c" -d"${secs}s" --latency -s bench/mcp_call.lua "$url" 2>&1)
  local rps p50 p99 errs
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '$1=="50%" {print $2}' <<<"$out")
  p99=$(awk '$1=="99%" {print $2}' <<<"$out")
  errs=$(awk '/Non-2xx/ {print $5} /Socket errors/ {print "sock"}' <<<"$out" | tr '\n' ' ')
  echo "$rps $(to_us "$p50") $(to_us "$p99") ${errs:-0}"
}
to_us() {
  awk -v v="$1" 'BEGIN { n=v+0; if (v ~ /us$/) print n; else if (v ~ /ms$/) print n*1000; else if (v ~ /s$/) print n*1000000; else print n }'
}

rows=()
row() { rows+=("$(printf '%-28s %10s %8s %8s %10s %8s %8s %9s %9s' "$@")"); }

bench_target() {
  local name=$1 url=$2 pid=$3
  local sid
  sid=$(open_session "$url")
  check_call "$url" "$sid" || { echo "bench: $name did not answer a tools/call correctly" >&2; return 1; }
  load "$url" 32 "$sid" >/dev/null # warm-up
  local idle r1 r32 loadrss
  idle=$(rss_kb "$pid")
  read -r a1 b1 c1 e1 < <(load "$url" 1 "$sid")
  ( sleep "$((secs / 2))"; rss_kb "$pid" > "$work/rss" ) &
  local sampler=$!
  read -r a32 b32 c32 e32 < <(load "$url" 32 "$sid")
  wait "$sampler" || true
  loadrss=$(cat "$work/rss")
  [ "$e1 $e32" = "0 0" ] || echo "bench: $name had errors: c1=$e1 c32=$e32" >&2
  row "$name" "$a1" "$b1" "$c1" "$a32" "$b32" "$c32" "$((idle / 1024))MB" "$((loadrss / 1024))MB"
  echo "$name: c1 $a1/s p50 ${b1}us | c32 $a32/s p50 ${b32}us p99 ${c32}us" >&2
}

# 1. nginx, static 200.
port=$(free_port)
mkdir -p "$work/nginx"
cat > "$work/nginx/nginx.conf" <<NGX
worker_processes 1;
daemon off;
pid $work/nginx/nginx.pid;
error_log $work/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $work/nginx;
  server {
    listen 127.0.0.1:$port;
    location /mcp { default_type application/json;
      return 200 '{"jsonrpc":"2.0","id":1,"result":{"content":[{"type":"text","text":"hello"}]}}'; }
  }
}
NGX
nginx -c "$work/nginx/nginx.conf" -p "$work/nginx" 2>/dev/null &
pids+=($!)
wait_port "$port"
bench_target "nginx (static 200)" "http://127.0.0.1:$port/mcp" "$(cat "$work/nginx/nginx.pid" 2>/dev/null || echo $!)"
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true

# 2. the upstream directly, over its pipes.
read -r u1 p1 q1 < <(build-bench/pipe_bench "$secs" 1 "$UP")
read -r u32 p32 q32 < <(build-bench/pipe_bench "$secs" 32 "$UP")
row "echo upstream (pipe, direct)" "$u1" "$p1" "$p32" "$u32" "$p32" "$q32" "-" "-"
rows[-1]="$(printf '%-28s %10s %8s %8s %10s %8s %8s %9s %9s' "echo upstream (pipe, direct)" "$u1" "$p1" "$q1" "$u32" "$p32" "$q32" "-" "-")"

# 3. smg, passthrough, shared stdio upstream; then the same with the embedded default's
# policy on the call (API-key auth; pii + injection + tool_scan on input, pii + injection
# on output, blocking as config/default.json does): what guarding costs.
# $1 row name, $2 extra keys of the server entry, $3 extra top-level keys.
bench_smg() {
  port=$(free_port)
  cat > "$work/smg.json" <<CFG
{ "common_mcp_gateway_config": { "enkrypt_log_level": "WARN" },
  "mcp_configs": { "b": { "mcp_config": [ { "server_name": "echo", "config": { "command": "$UP" } $2 } ] } },
  "gateway": { "mode": "passthrough", "port": $port, "mcp_config_id": "b" } $3 }
CFG
  "$SMG" serve --config "$work/smg.json" 2>"$work/smg.log" &
  pids+=($!)
  wait_port "$port"
  bench_target "$1" "http://127.0.0.1:$port/mcp" "${pids[-1]}"
  kill -TERM "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true
}
bench_smg "smg (passthrough)" "" ""
MODERN=1 bench_smg "smg (passthrough, 2026)" "" ""
input='{ "enabled": true, "policy_name": "default", "guardrails": ["pii", "injection", "tool_scan"],
  "block": ["injection_attack", "tool_poisoning", "tool_changed"] }'
output='{ "enabled": true, "policy_name": "default", "guardrails": ["pii", "injection"],
  "block": ["injection_attack", "credential_request"] }'
apikey=$(head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n')
bench_smg "smg (passthrough, guarded)" ", \"enable_tool_guardrails\": true,
  \"input_guardrails_policy\": $input, \"output_guardrails_policy\": $output" ",
  \"plugins\": { \"auth\": { \"provider\": \"local_apikey\" } },
  \"apikeys\": { \"$apikey\": { \"project_id\": \"p\", \"user_id\": \"u\" } },
  \"projects\": { \"p\": { \"project_name\": \"bench\", \"mcp_config_id\": \"b\", \"users\": [\"u\"] } },
  \"users\": { \"u\": { \"email\": \"bench@example.com\" } }"
apikey=""

# 3a. The two eras side by side: one machine's noise moves single runs by +-20%, so the
# 2026 (stateless) and 2025 (session) passthrough rows are compared over alternating
# runs at concurrency 32, medians taken.
era_ratio() {
  local p25 p26 sid r25=() r26=()
  p25=$(free_port); p26=$(free_port)
  for p in "$p25" "$p26"; do
    cat > "$work/smg-era-$p.json" <<CFG
{ "common_mcp_gateway_config": { "enkrypt_log_level": "WARN" },
  "mcp_configs": { "b": { "mcp_config": [ { "server_name": "echo", "config": { "command": "$UP" } } ] } },
  "gateway": { "mode": "passthrough", "port": $p, "mcp_config_id": "b" } }
CFG
    "$SMG" serve --config "$work/smg-era-$p.json" 2>"$work/smg-era-$p.log" &
    pids+=($!)
    wait_port "$p"
  done
  sid=$(open_session "http://127.0.0.1:$p25/mcp")
  MODERN=1 check_call "http://127.0.0.1:$p26/mcp" "" || { echo "bench: 2026 call failed" >&2; return 1; }
  local keep=$secs
  secs=2; load "http://127.0.0.1:$p25/mcp" 32 "$sid" >/dev/null; MODERN=1 load "http://127.0.0.1:$p26/mcp" 32 "" >/dev/null
  secs=4
  for _ in 1 2 3 4 5; do
    r25+=("$(load "http://127.0.0.1:$p25/mcp" 32 "$sid" | awk '{print $1}')")
    r26+=("$(MODERN=1 load "http://127.0.0.1:$p26/mcp" 32 "" | awk '{print $1}')")
  done
  secs=$keep
  kill -TERM "${pids[-1]}" "${pids[-2]}"; wait "${pids[-1]}" "${pids[-2]}" 2>/dev/null || true
  local m25 m26
  m25=$(printf '%s\n' "${r25[@]}" | sort -n | sed -n 3p)
  m26=$(printf '%s\n' "${r26[@]}" | sort -n | sed -n 3p)
  echo "2026 vs 2025 passthrough, c32, 5 alternating 4 s runs, medians: ${m26}/s vs ${m25}/s, ratio $(awk -v a="$m26" -v b="$m25" 'BEGIN { printf "%.2f", a / b }')"
}
era_line=$(era_ratio)
echo "$era_line" >&2
# The same comparison in instructions per call (callgrind): repeatable where calls/s on a
# shared machine is not.
if command -v valgrind >/dev/null; then
  era_ir_line=$(bash bench/era_instructions.sh 3000 2>&1 | tail -1)
else
  era_ir_line="(instructions per call: valgrind is not installed)"
fi
echo "$era_ir_line" >&2

# 3b. smg memory per idle session: 10,000 sessions that initialized and went quiet (the
# session limits raised: by default one peer may hold 1024).
port=$(free_port)
cat > "$work/smg-sessions.json" <<CFG
{ "common_mcp_gateway_config": { "enkrypt_log_level": "WARN" },
  "mcp_configs": { "b": { "mcp_config": [ { "server_name": "echo", "config": { "command": "$UP" } } ] } },
  "gateway": { "mode": "passthrough", "port": $port,
    "limits": { "max_sessions": 20000, "max_sessions_per_identity": 20000, "max_sessions_per_peer": 20000 } } }
CFG
"$SMG" serve --config "$work/smg-sessions.json" 2>"$work/smg-sessions.log" &
pids+=($!)
wait_port "$port"
open_session "http://127.0.0.1:$port/mcp" >/dev/null # the upstream started, the first session's costs paid
sleep 0.5
before=$(rss_kb "${pids[-1]}")
opened=$(node bench/sessions.mjs "http://127.0.0.1:$port/mcp" 10000 2>&1 | tail -1)
sleep 1
after=$(rss_kb "${pids[-1]}")
sessions_line="smg idle sessions: $opened opened, RSS ${before} kB -> ${after} kB, $(( (after - before) * 1024 / (opened > 0 ? opened : 1) )) bytes per session"
echo "$sessions_line" >&2
kill -TERM "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true

# 4. supergateway (Node), stateful Streamable HTTP, same upstream.
port=$(free_port)
tests/node_modules/.bin/supergateway --stdio "$UP" --outputTransport streamableHttp --stateful \
  --port "$port" --logLevel none >/dev/null 2>&1 &
pids+=($!)
wait_port "$port"
sleep 0.5
bench_target "supergateway 4.0.0 (Node)" "http://127.0.0.1:$port/mcp" "${pids[-1]}" || true
kill "${pids[-1]}"; wait "${pids[-1]}" 2>/dev/null || true

# 5. guardrails under attack: neighbours' latency while one tenant sends 1 MB crafted payloads.
adversarial=$(node bench/adversarial.mjs "$SMG" "$secs" 2>&1 | tail -3)

echo
echo "smg benchmark: tools/call echo, wrk -t1, ${secs}s per run, $(nproc) cores, $(date -u +%Y-%m-%d)"
printf '%-28s %10s %8s %8s %10s %8s %8s %9s %9s\n' "target" "c1 call/s" "p50 us" "p99 us" "c32 call/s" "p50 us" "p99 us" "RSS idle" "RSS load"
for r in "${rows[@]}"; do echo "$r"; done
echo "$era_line"
echo "$era_ir_line"
echo "$sessions_line"
echo "$adversarial"
