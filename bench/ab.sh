#!/usr/bin/env bash
# A/B of two smg binaries on the bench/run.sh workload (passthrough tools/call over
# Streamable HTTP to the C echo upstream), alternating A and B for ROUNDS rounds so
# machine noise lands on both: prints calls/s and p50 at concurrency 1 and 32 per run,
# then the medians. Build both with -DCMAKE_BUILD_TYPE=Release (bench/run.sh's
# build-bench/ is one).
#   bench/ab.sh OLD_SMG NEW_SMG [ROUNDS=3] [SECONDS=5]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
A=$1 B=$2 rounds=${3:-3} secs=${4:-5}
UP=$root/build-bench/echo_upstream
[ -x "$UP" ] || { cmake -S . -B build-bench -DCMAKE_BUILD_TYPE=Release >/dev/null; cmake --build build-bench -j"$(nproc)" >/dev/null; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat > "$work/smg.json" <<CFG
{ "common_mcp_gateway_config": { "enkrypt_log_level": "WARN" },
  "mcp_configs": { "b": { "mcp_config": [ { "server_name": "echo", "config": { "command": "$UP" } } ] } },
  "gateway": { "mode": "passthrough", "port": $port } }
CFG
run() { # binary concurrency -> "calls/s p50"
  local bin=$1 c=$2 pid sid out
  "$bin" serve --config "$work/smg.json" 2>/dev/null &
  pid=$!
  for _ in $(seq 100); do (echo > "/dev/tcp/127.0.0.1/$port") 2>/dev/null && break; sleep 0.05; done
  sid=$(curl -s -D - -o /dev/null -X POST "http://127.0.0.1:$port/mcp" -H 'Content-Type: application/json' \
    -H 'Accept: application/json, text/event-stream' \
    -d '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"ab","version":"1"}}}' \
    | awk 'tolower($1)=="mcp-session-id:" {print $2}' | tr -d '\r')
  MCP_SESSION=$sid wrk -t1 -c32 -d1s -s bench/mcp_call.lua "http://127.0.0.1:$port/mcp" >/dev/null 2>&1 # warm-up
  out=$(MCP_SESSION=$sid wrk -t1 -c"$c" -d"${secs}s" --latency -s bench/mcp_call.lua "http://127.0.0.1:$port/mcp" 2>&1)
  kill -TERM "$pid"; wait "$pid" 2>/dev/null || true
  echo "$(awk '/Requests\/sec/ {print $2}' <<<"$out") $(awk '$1=="50%" {print $2}' <<<"$out")"
}
: > "$work/a"; : > "$work/b"
for r in $(seq "$rounds"); do
  for side in a b; do
    bin=$A; [ $side = b ] && bin=$B
    read -r r1 p1 < <(run "$bin" 1)
    read -r r32 p32 < <(run "$bin" 32)
    echo "round $r $side: c1 $r1/s p50 $p1 | c32 $r32/s p50 $p32"
    echo "$r1 $r32" >> "$work/$side"
  done
done
med() { sort -n | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }
for side in a b; do
  echo "median $side: c1 $(awk '{print $1}' "$work/$side" | med)/s  c32 $(awk '{print $2}' "$work/$side" | med)/s"
done
