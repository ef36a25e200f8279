#!/usr/bin/env bash
# Soak run (not in CI): the ASan+UBSan build of smg under mixed traffic and faults for
# MINUTES (default 10), core dumps on, then SIGTERM. Passes when no call hung, smg stayed
# up and exited 0 after draining, no sanitizer report and no core file appeared, and RSS
# did not keep growing. Prints the driver's report (tests/soak/soak.mjs) and a verdict.
#   scripts/soak.sh [MINUTES]
#   SMG_SOAK_BUILD=build scripts/soak.sh 10   the same against the plain build (RSS as in production)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
minutes=${1:-10}
bash scripts/bootstrap.sh >/dev/null
cmake -S . -B build-asan -DSMG_ASAN=ON -DSMG_UBSAN=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-asan -j"$(nproc)" >/dev/null
smg="$root/${SMG_SOAK_BUILD:-build-asan}/smg"
work=$(mktemp -d /tmp/smg-soak.XXXXXX)
ulimit -c unlimited
cd "$work"
# A small quarantine, so that RSS says something about our memory, not ASan's.
export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1:disable_coredump=0:quarantine_size_mb=16"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
cat > config.json <<JSON
{
  "common_mcp_gateway_config": { "timeout_settings": { "tool_execution_timeout": 10, "discovery_timeout": 10 } },
  "mcp_configs": { "soak": { "mcp_config": [
    { "server_name": "echo", "config": { "command": "$smg", "args": ["run", "$root/examples/servers/echo.lua"] } },
    { "server_name": "faulty", "config": { "command": "$smg", "args": ["run", "$root/tests/fixtures/servers/faulty.lua"] },
      "restart_backoff_max": 0.5, "max_restarts": 100000 },
    { "server_name": "conf", "sharing": "per_session",
      "config": { "command": "$smg", "args": ["run", "$root/examples/servers/conformance.lua"] } }
  ] } },
  "gateway": { "port": 0, "mode": "aggregate", "mcp_config_id": "soak",
    "limits": { "max_message_bytes": 1048576, "request_timeout": 3, "unused_session_timeout": 30,
      "session_idle_timeout": 60 } }
}
JSON
"$smg" serve --config config.json 2> smg.log &
pid=$!
for _ in $(seq 100); do grep -q "serving MCP on" smg.log && break; sleep 0.1; done
url=$(grep -o "serving MCP on http://[^ ]*" smg.log | awk '{print $4}')
echo "soak: smg pid $pid at $url for $minutes min (work dir $work)"
set +e
node "$root/tests/soak/soak.mjs" "$url" "$pid" "$minutes" | tee report.json
driver=${PIPESTATUS[0]}
alive=0; kill -0 "$pid" 2>/dev/null && alive=1
kill -TERM "$pid" 2>/dev/null; wait "$pid"; code=$?
set -e
sanitizer=$(grep -c -E "ERROR: AddressSanitizer|runtime error:|SUMMARY: UndefinedBehavior" smg.log || true)
cores=$(find . -maxdepth 1 -name 'core*' | wc -l)
echo "soak: driver exit $driver, smg alive at the end: $alive, exit code after SIGTERM: $code, sanitizer reports: $sanitizer, core files: $cores"
if [ "$driver" -eq 0 ] && [ "$alive" -eq 1 ] && [ "$code" -eq 0 ] && [ "$sanitizer" -eq 0 ] && [ "$cores" -eq 0 ]; then
  echo "soak: PASS"
else
  echo "soak: FAIL (log: $work/smg.log)"; exit 1
fi
