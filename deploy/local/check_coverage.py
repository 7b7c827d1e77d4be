"""Enforce line and branch coverage separately (coverage's own fail_under mixes them)."""

from __future__ import annotations

import json
import sys

LINES_MIN, BRANCHES_MIN = 85.0, 80.0

totals = json.load(open(sys.argv[1] if len(sys.argv) > 1 else ".coverage.json"))["totals"]
lines = 100.0 * totals["covered_lines"] / max(totals["num_statements"], 1)
branches = 100.0 * totals["covered_branches"] / max(totals["num_branches"], 1)
print(f"coverage: lines {lines:.1f}% (min {LINES_MIN}%), branches {branches:.1f}% (min {BRANCHES_MIN}%)")
if lines < LINES_MIN or branches < BRANCHES_MIN:
    print("coverage below the enforced minimum", file=sys.stderr)
    sys.exit(1)
