#!/usr/bin/env bash
# ferrax's side of the peer benchmark: builds ferrax-bench with the plain `cargo build
# --release` a user gets (no RUSTFLAGS: the kernels pick AVX2/FMA or AVX-512 at run time)
# and prints only its JSON lines on stdout.
#
#   bench/ours.sh [--tuned] [--quick] [--case NAME]... [--threads N]
#
# --tuned builds for x86-64-v3 instead (`-C target-cpu=x86-64-v3`, in target/v3), for a
# figure reported beside the plain one, never instead of it. With --threads 1 the process is
# also pinned to CPU 0 (taskset), as the peer's --single-thread run pins itself.
set -euo pipefail
cd "$(dirname "$0")/.."
args=()
tuned=""
for a in "$@"; do
  if [ "$a" = "--tuned" ]; then tuned=1; else args+=("$a"); fi
done
if [ -n "$tuned" ]; then
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target/v3}"
  RUSTFLAGS="-C target-cpu=x86-64-v3" cargo build --release -q -p ferrax-bench >&2
else
  export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-target}"
  env -u RUSTFLAGS cargo build --release -q -p ferrax-bench >&2
fi
bin="$CARGO_TARGET_DIR/release/ferrax-bench"
threads=""
prev=""
for a in "${args[@]}"; do
  if [ "$prev" = "--threads" ]; then threads="$a"; fi
  prev="$a"
done
if [ "$threads" = "1" ] && command -v taskset >/dev/null; then
  exec taskset -c 0 "$bin" "${args[@]}" 2>/dev/null
fi
exec "$bin" "${args[@]}" 2>/dev/null
