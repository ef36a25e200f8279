#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) and runs each for a while from the
# seed corpus in tests/fuzz/corpus: the HTTP server over real connections, and the JSON
# binding, JSON-RPC envelope, SSE and config parsers and the text-scanning guardrails inside
# the real Lua VM (a slow input, -timeout, counts as a failure). A crash
# leaves its input in build-fuzz/crashes/ and fails the run.
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     (default 30 s, every target)
#   scripts/fuzz.sh --ci                                 reproducible: fixed seed and run count
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
# CI must give the same verdict every time: a fixed seed and a fixed number of inputs
# (exploration with a clock is for developers; what it finds joins the corpus).
ci=0
if [ "${1:-}" = "--ci" ]; then ci=1; shift; set -- 0 "$@"; fi
secs=${1:-30}
shift || true
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(http json jsonrpc sse config guardrails)

CC=clang cmake -S . -B build-fuzz -DSMG_FUZZ=ON -DSMG_ASAN=ON -DSMG_UBSAN=ON -DCMAKE_BUILD_TYPE=Debug >/dev/null
cmake --build build-fuzz -j"$(nproc)" > build-fuzz/build.log 2>&1 || { cat build-fuzz/build.log; exit 1; }

export ASAN_OPTIONS="detect_leaks=0:abort_on_error=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
mkdir -p build-fuzz/crashes
status=0
for t in "${targets[@]}"; do
  work=build-fuzz/corpus/$t
  mkdir -p "$work"
  log=build-fuzz/fuzz_$t.log
  if [ $ci = 1 ]; then
    runs=2000000
    [ "$t" = guardrails ] && runs=400000
    [ "$t" = http ] && runs=100000 # real connections: slower per input
    budget=(-seed=1 -runs=$runs)
    rm -rf "$work" && mkdir -p "$work"
  else
    budget=(-max_total_time="$secs")
  fi
  if ./build-fuzz/fuzz_"$t" "${budget[@]}" -max_len=8192 -timeout=5 \
      -artifact_prefix=build-fuzz/crashes/"$t"- "$work" tests/fuzz/corpus/"$t" > "$log" 2>&1; then
    echo "fuzz $t: $(grep -o 'Done [0-9]* runs in [0-9]* second(s)' "$log" | tail -1), no crash"
  else
    echo "fuzz $t: FAILED"
    grep -A20 -E "ERROR|Lua error" "$log" | head -40
    status=1
  fi
done
exit $status
