"""How the prod program scales with onboarded applications, under Pulumi mocks (not a timed test).

    .venv/bin/python benchmarks/config_scale.py [--sizes 1,100,1000] [--repeat 2]

Runs the real __main__.py for the prod stack through the test harness (in its worker process, each
run in a fresh copy of Pulumi's runtime state; the run cache is off, so every point is evaluated)
with N generated applications, and prints wall time, resource count and resources per application
for two kinds of application:

- own-folder: KV only under its own <namespace>/<service account>/ folder: the templated policy
  covers it, so it costs one resource (its Kubernetes auth role);
- with-extras: also a database role: it needs an app-<name> policy too, two resources.

Targets (issue 5): with the templated policy at most 2 resources per application; 1000
applications evaluate in under 15 s; time grows linearly. The SDK imports are paid before the first
row (the run without applications); each point is the fastest of --repeat runs, since other load
on the machine only ever adds time.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
# Every point evaluated, none answered from the harness's disk cache of earlier runs.
os.environ["VAULT_PLATFORM_HARNESS_CACHE"] = "off"

from tests.harness import run_stack

COMPONENT = "vault-platform:configuration:VaultConfiguration"
MAX_RESOURCES_PER_APP = 2
MAX_SECONDS_AT_1000 = 15.0
# Linear growth: the time per added application between the two largest sizes may be at most this
# many times the time per application between the two smallest.
MAX_SLOPE_RATIO = 2.0


def applications(count: int, extras: bool) -> list[dict]:
    apps = []
    for i in range(count):
        ns, sa = f"team-{i % 40:02d}", f"svc-{i:04d}"
        app = {"name": f"app-{i:04d}", "namespace": ns, "serviceAccount": sa,
               "kv": [{"path": f"secret/data/{ns}/{sa}/*", "access": "read"}]}
        if extras:
            app["databaseRole"] = "myapp-db"
        apps.append(app)
    return apps


def measure(count: int, extras: bool, repeat: int = 1) -> tuple[float, int, int]:
    """Wall seconds (fastest of ``repeat``), all resources, and resources of the configuration component."""
    best = float("inf")
    for attempt in range(repeat):
        overrides = {"applications": applications(count, extras)}
        if attempt:  # a distinct config, so the harness's in-process cache does not answer
            overrides["kv"] = {"maxVersions": 10 + attempt}
        start = time.perf_counter()
        rec = run_stack("prod", overrides)
        best = min(best, time.perf_counter() - start)
    seconds = best
    component = rec.one(COMPONENT).urn
    return seconds, len(rec.resources), sum(1 for r in rec.resources if r.parent == component)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1,100,1000", help="comma-separated application counts")
    parser.add_argument("--repeat", type=int, default=2, help="runs per point; the fastest counts")
    args = parser.parse_args()
    sizes = sorted({int(s) for s in args.sizes.split(",")})

    _, _, base = measure(0, False)  # the component's resources without any application
    ok = True
    print(f"prod stack under mocks; configuration component without applications: {base} resources\n")
    print(f"{'kind':<12}{'apps':>6}{'seconds':>10}{'resources':>11}{'config res.':>13}{'per app':>9}{'ms/app':>9}")
    for extras in (False, True):
        kind = "with-extras" if extras else "own-folder"
        rows = []
        for n in sizes:
            seconds, total, config_resources = measure(n, extras, max(1, args.repeat))
            per_app = (config_resources - base) / n if n else 0.0
            rows.append((n, seconds))
            print(f"{kind:<12}{n:>6}{seconds:>10.2f}{total:>11}{config_resources:>13}{per_app:>9.2f}"
                  f"{1000 * seconds / max(n, 1):>9.1f}")
            if per_app > MAX_RESOURCES_PER_APP:
                ok = False
                print(f"  FAIL: {per_app:.2f} resources per application (target <= {MAX_RESOURCES_PER_APP})")
            if n == 1000 and seconds >= MAX_SECONDS_AT_1000:
                ok = False
                print(f"  FAIL: {seconds:.1f} s for 1000 applications (target < {MAX_SECONDS_AT_1000:.0f} s)")
        if len(rows) >= 3:
            (n0, t0), (n1, t1), (n2, t2) = rows[0], rows[-2], rows[-1]
            small = (t1 - t0) / (n1 - n0)
            large = (t2 - t1) / (n2 - n1)
            linear = large <= MAX_SLOPE_RATIO * max(small, 1e-3)
            ok &= linear
            print(f"  {kind}: {1000 * small:.1f} ms per added app ({n0}->{n1}), {1000 * large:.1f} ms ({n1}->{n2}): "
                  f"{'linear' if linear else 'NOT linear'}")
        print()
    print("targets hold" if ok else "targets DO NOT hold")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
