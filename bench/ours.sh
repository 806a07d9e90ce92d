#!/usr/bin/env bash
# ferrax's side of the peer benchmark: builds ferrax-bench in release mode for AVX2 + FMA
# (x86-64-v3; XLA compiles for the host too) and prints only its JSON lines on stdout.
# (-C target-cpu=native, i.e. AVX-512 here, made several vectorized kernels 3-6x slower.)
#
#   bench/ours.sh [--quick] [--case NAME]... [--threads N]
#
# With --threads 1 the process is also pinned to CPU 0 (taskset), as the peer's
# --single-thread run pins itself.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/v3}"
RUSTFLAGS="${RUSTFLAGS:--C target-cpu=x86-64-v3}" cargo build --release -q -p ferrax-bench >&2
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
