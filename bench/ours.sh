#!/usr/bin/env bash
# ferrax's side of the peer benchmark: builds ferrax-bench in release mode for this CPU
# (like XLA, which compiles for the host) and prints only its JSON lines on stdout.
#
#   bench/ours.sh [--quick] [--case NAME]... [--threads N]
#
# With --threads 1 the process is also pinned to CPU 0 (taskset), as the peer's
# --single-thread run pins itself.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/native}"
RUSTFLAGS="${RUSTFLAGS:--C target-cpu=native}" cargo build --release -q -p ferrax-bench >&2
bin="$CARGO_TARGET_DIR/release/ferrax-bench"
threads=""
prev=""
for a in "$@"; do
  if [ "$prev" = "--threads" ]; then threads="$a"; fi
  prev="$a"
done
if [ "$threads" = "1" ] && command -v taskset >/dev/null; then
  exec taskset -c 0 "$bin" "$@" 2>/dev/null
fi
exec "$bin" "$@" 2>/dev/null
