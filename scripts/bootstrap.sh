#!/usr/bin/env bash
# Installs everything smg needs to build, test and benchmark on Debian 12, idempotently:
#  1. Debian packages (skipped when all are already installed; libclang-rt-14-dev holds
#     libFuzzer and the sanitizer runtimes, only recommended by clang);
#  2. llhttp and yyjson, which Debian 12 lacks, unpacked from Debian 13's .debs into
#     deps/prefix (a private apt state: the system's package sources are never touched);
#  3. the npm packages the end-to-end tests use (tests/package.json, pinned by its lockfile).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

SUDO=""
[ "$(id -u)" -eq 0 ] || SUDO="sudo"

pkgs=(build-essential cmake pkg-config clang libclang-rt-14-dev clang-format
      libluajit2-5.1-dev lua-cjson lua-cjson-dev libuv1-dev
      libcurl4-openssl-dev libhiredis-dev libssl-dev
      lua-busted lua-check redis-server wrk nginx-light curl ca-certificates openssl prometheus)

missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "bootstrap: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  $SUDO apt-get update -qq
  $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  # nginx-light and prometheus start system services; we only want their binaries
  # (the benchmark runs its own nginx; the tests use promtool).
  for svc in nginx prometheus; do
    $SUDO systemctl disable --now "$svc" >/dev/null 2>&1 || $SUDO service "$svc" stop >/dev/null 2>&1 || true
  done
fi

# llhttp + yyjson from Debian 13 (trixie) into deps/prefix.
prefix="$root/deps/prefix"
if [ ! -f "$prefix/usr/include/llhttp.h" ] || [ ! -f "$prefix/usr/include/yyjson.h" ]; then
  mirror=""
  if [ -f /etc/apt/sources.list.d/debian.sources ]; then
    mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources)
  fi
  if [ -z "$mirror" ] && [ -f /etc/apt/sources.list ]; then
    mirror=$(awk '$1=="deb" {print $2; exit}' /etc/apt/sources.list)
  fi
  [ -n "$mirror" ] || { echo "bootstrap: no Debian mirror found in the apt configuration" >&2; exit 1; }
  apt_dir="$root/deps/apt"
  mkdir -p "$apt_dir/lists/partial" "$apt_dir/cache/archives/partial" "$prefix"
  echo "deb $mirror trixie main" > "$apt_dir/sources.list"
  opts=(-o Dir::Etc::SourceList="$apt_dir/sources.list" -o Dir::Etc::SourceParts=/dev/null
        -o Dir::State::Lists="$apt_dir/lists" -o Dir::Cache="$apt_dir/cache"
        -o Debug::NoLocking=1 -o APT::Get::List-Cleanup=0)
  apt-get "${opts[@]}" update -qq
  (cd "$apt_dir" && apt-get "${opts[@]}" download libllhttp-dev libllhttp9.2 libyyjson-dev libyyjson0 >/dev/null)
  for d in "$apt_dir"/*.deb; do dpkg -x "$d" "$prefix"; done
  rm -rf "$apt_dir/lists" "$apt_dir/cache"
fi

# npm packages for the end-to-end tests and the benchmark's peer gateway.
if [ -f tests/package.json ]; then
  # npm writes node_modules/.package-lock.json last: its absence means no (or a broken) install.
  if [ ! -f tests/node_modules/.package-lock.json ] || [ tests/package-lock.json -nt tests/node_modules/.package-lock.json ]; then
    (cd tests && npm ci --no-audit --no-fund --loglevel=error)
  fi
fi
echo "bootstrap: ok"
