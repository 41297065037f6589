#!/usr/bin/env python3
"""What the unit tier costs (not a timed test): the tests that need no server and no built tool.

    venv/bin/python benchmarks/unit_tier.py [--runs 1] [--pytest-args "..."]

Runs `pytest -m "not integration and not engine and not promtool and not chart"` in a fresh
process, twice per round: cold (an empty run cache: every configuration of the program is
evaluated, as on a fresh clone or after a change to the program) and warm (the same source tree
again: the run cache answers). Prints wall time, CPU time (pytest and the harness's worker), the
tests that passed and how many program runs were evaluated. Target: cold under 60 s on 2 cores.
Each figure is the fastest of --runs rounds, since other load on the machine only ever adds time.
"""

from __future__ import annotations

import argparse
import os
import re
import resource
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKERS = "not integration and not engine and not promtool and not chart"
TARGET_COLD_SECONDS = 60.0


def run_tier(cache: Path, extra: list[str]) -> tuple[float, float, str, str]:
    """(wall seconds, CPU seconds, the pytest summary line, the harness's line) of one run."""
    env = {**os.environ, "VAULT_PLATFORM_HARNESS_CACHE": str(cache)}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-m", MARKERS, "-q", "-p", "no:cacheprovider", *extra],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=3600, check=False)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    lines = proc.stdout.strip().splitlines()
    summary = next((line.strip("= ") for line in reversed(lines) if re.search(r"\d+ (passed|failed)", line)), "")
    runs = next((line for line in lines if line.startswith("program runs:")), "program runs: none")
    if proc.returncode != 0:
        print(proc.stdout[-3000:], file=sys.stderr)
        raise SystemExit(f"the unit tier failed: {summary}")
    return wall, cpu, summary, runs


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=1, help="rounds; the fastest of each counts")
    parser.add_argument("--pytest-args", default="", help="more pytest arguments (e.g. a -k expression)")
    args = parser.parse_args()
    extra = shlex.split(args.pytest_args)
    best: dict[str, tuple[float, float, str, str]] = {}
    for _ in range(max(1, args.runs)):
        with tempfile.TemporaryDirectory(prefix="unit-tier-cache-") as tmp:
            for kind in ("cold", "warm"):
                result = run_tier(Path(tmp), extra)
                if kind not in best or result[0] < best[kind][0]:
                    best[kind] = result
    print(f"unit tier: pytest -m {MARKERS!r}; {os.cpu_count()} cores\n")
    for kind, (wall, cpu, summary, runs) in best.items():
        print(f"{kind:<5} {wall:7.1f} s wall {cpu:7.1f} s CPU   {summary}")
        print(f"      {runs}")
    cold = best["cold"][0]
    ok = cold < TARGET_COLD_SECONDS
    print(f"\ncold {cold:.1f} s: {'under' if ok else 'NOT under'} the {TARGET_COLD_SECONDS:.0f} s target")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
