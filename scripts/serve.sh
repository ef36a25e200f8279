#!/usr/bin/env bash
# Sets everything up (idempotent: packages, deps/, build) and runs `smg serve` with any
# arguments given; without --config it serves the embedded default on 127.0.0.1:8000.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bash scripts/bootstrap.sh >&2
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)" >/dev/null
exec build/smg serve "$@"
