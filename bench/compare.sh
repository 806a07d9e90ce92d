#!/usr/bin/env bash
# Runs ferrax's benchmark and the peer (JAX on CPU) one after the other, on one thread and on
# two, and prints compare.py's ratio tables (ours / peer: below 1 means ferrax is faster).
#
#   bench/compare.sh [--quick] [--case NAME]...
#
# ferrax runs from the plain release build (bench/ours.sh; add --tuned there for the
# x86-64-v3 build reported beside it).
# The peer needs a Python with jax (JAX_PYTHON, default /tmp/jaxenv/bin/python; create it with
#   python3 -m venv /tmp/jaxenv && /tmp/jaxenv/bin/pip install jax numpy).
# Without it only ferrax's lines are printed. Results go to bench/results/.
set -euo pipefail
cd "$(dirname "$0")/.."
py="${JAX_PYTHON:-/tmp/jaxenv/bin/python}"
suite="../shared/bench"
mkdir -p bench/results
for t in 1 2; do
  bench/ours.sh "$@" --threads "$t" > "bench/results/ours_${t}t.jsonl"
  if [ -x "$py" ] && [ -f "$suite/jax_suite.py" ]; then
    if [ "$t" = 1 ]; then
      "$py" "$suite/jax_suite.py" --single-thread "$@" > "bench/results/jax_${t}t.jsonl" 2>/dev/null
    else
      "$py" "$suite/jax_suite.py" "$@" > "bench/results/jax_${t}t.jsonl" 2>/dev/null
    fi
    echo "== $t thread(s)"
    python3 "$suite/compare.py" "bench/results/ours_${t}t.jsonl" "bench/results/jax_${t}t.jsonl"
  else
    echo "== $t thread(s): no JAX environment at $py; ferrax only"
    cat "bench/results/ours_${t}t.jsonl"
  fi
done
