#!/usr/bin/env python3
"""Merges several rounds of one side's benchmark lines into one file of medians.

    python3 bench/median_of_rounds.py OUT.jsonl ROUND1.jsonl ROUND2.jsonl ...

Each metric's `median_ms` in OUT is the median of the rounds' medians (the figure the
tables in BENCHMARKS.md report); other fields come from the first round. Run it once for
ferrax's rounds and once for JAX's, then pair the two with the suite's compare.py.
"""
import json
import statistics
import sys


def main():
    out, rounds = sys.argv[1], sys.argv[2:]
    cases = {}
    order = []
    for path in rounds:
        with open(path) as f:
            for line in f:
                line = line.strip()
                if not line.startswith("{"):
                    continue
                rec = json.loads(line)
                if "case" not in rec or "metrics" not in rec:
                    continue
                name = rec["case"]
                if name not in cases:
                    cases[name] = (rec, {})
                    order.append(name)
                for metric, m in rec["metrics"].items():
                    if isinstance(m, dict) and "median_ms" in m:
                        cases[name][1].setdefault(metric, []).append(m["median_ms"])
    with open(out, "w") as f:
        for name in order:
            rec, values = cases[name]
            merged = dict(rec)
            merged["metrics"] = {
                metric: dict(rec["metrics"].get(metric, {}), median_ms=statistics.median(v), rounds=len(v))
                for metric, v in values.items()
            }
            f.write(json.dumps(merged) + "\n")


if __name__ == "__main__":
    main()
