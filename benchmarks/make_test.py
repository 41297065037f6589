#!/usr/bin/env python3
"""What `make test` costs, tier by tier (not a timed test): read from the output of a run.

    make test 2>&1 | tee make-test.log; venv/bin/python benchmarks/make_test.py make-test.log

pytest ends with a line `wall time by tier: unit 52 s (1380 tests), ...` (tests/conftest.py), and
tools/run-tests.sh with the wall time of the pytest run, how many workers ran it, and the whole run's
(the venv install and the tool builds before pytest included). Prints
every tier's wall time (from its first test's start to its last one's end: with several workers the
tiers overlap) and test count, the whole run, and the goals: the unit tier under 60 s, a cold run
(tools built from nothing) under 20 min, a warm one under 10 min.
Without a log it says how to make one: running the whole suite from here would take half an hour.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

TIERS = re.compile(r"^wall time by tier: (.*)$", re.M)
TIER = re.compile(r"(?P<name>[a-z]+(?: \[[a-z]+\])?) (?P<seconds>\d+) s \((?P<tests>\d+) tests\)")
DONE = re.compile(r"^make test: pytest done in (\d+) s, in (one process|\d+ workers)(?:; (\d+) s in all)?", re.M)
PASSED = re.compile(r"^=*\s*(\d+) passed.* in ([\d.]+)s", re.M)
GOALS = {"unit": 60, "cold": 20 * 60, "warm": 10 * 60}


def figures(log: str) -> dict[str, object]:
    tiers: dict[str, tuple[int, int]] = {}
    for line in TIERS.findall(log):
        for m in TIER.finditer(line):
            tiers[m["name"]] = (int(m["seconds"]), int(m["tests"]))
    runs = [float(s) for _, s in PASSED.findall(log)]
    done = DONE.search(log)
    return {"tiers": tiers, "pytest_runs_seconds": runs,
            "pytest_seconds": int(done.group(1)) if done else None,
            "total_seconds": int(done.group(3) or done.group(1)) if done else (max(runs) if runs else None),
            "processes": done.group(2) if done else None}


def minutes(seconds: float) -> str:
    return f"{int(seconds // 60)} min {int(seconds % 60)} s"


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[2].strip())
        print("no log given: nothing measured")
        return 0
    f = figures(Path(argv[0]).read_text(errors="replace"))
    if not f["tiers"]:
        print(f"{argv[0]}: no 'wall time by tier' line: not the output of make test")
        return 1
    for name, (seconds, tests) in f["tiers"].items():
        print(f"  {name:22} {minutes(seconds):>12}  {tests:5} tests")
    for seconds in f["pytest_runs_seconds"]:
        print(f"  pytest {'':15} {minutes(seconds):>12}")
    total = f["total_seconds"]
    if total is not None:
        print(f"  whole run {'':12} {minutes(total):>12}  {f['processes'] or ''}")
    unit = f["tiers"].get("unit")
    if unit:
        verdict = "met" if unit[0] < GOALS["unit"] else "NOT met"
        print(f"goal: unit tier under {GOALS['unit']} s: {verdict} ({unit[0]} s)")
    if total is not None:
        for kind in ("warm", "cold"):
            verdict = "met" if total < GOALS[kind] else "not met"
            print(f"goal: a {kind} run under {minutes(GOALS[kind])}: {verdict} if this run was {kind}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
