"""How long the Secrets Manager migration takes to plan, apply and verify N secrets (not a timed test).

    venv/bin/python benchmarks/migration.py [--sizes 1000,10000] [--flavors openbao,vault] [--workers 8]

For each server flavour and size: a fresh dev server on 127.0.0.1 and moto's Secrets Manager on
127.0.0.1 holding N secrets (70% JSON objects of 4 keys, 20% plain strings, 10% binary, nested
names, two tags each), then `python -m migration plan`, `apply`, `apply` again (the idempotent
re-run: nothing to write) and `verify`, each as the CLI runs (a subprocess, the real HTTP APIs).
Wall time includes the process start and imports. moto is seeded through its backend, since how
fast moto accepts writes is not what is measured.

Targets: apply of 10,000 secrets under 60 s on a 2-core machine; time grows linearly (the
time per secret at the largest size at most twice that at the smallest).
"""

from __future__ import annotations

import argparse
import base64
import json
import logging
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration import servers  # noqa: E402

MAX_APPLY_SECONDS_AT_10000 = 60.0
MAX_SLOPE_RATIO = 2.0
REGION = "us-east-1"
ACCOUNT = "123456789012"  # moto's default account


def seed(count: int) -> None:
    from moto.backends import get_backend

    backend = get_backend("secretsmanager")[ACCOUNT][REGION]
    for i in range(count):
        name = f"bench/team-{i % 50:02d}/svc-{i:05d}/config"
        string, binary = None, None
        if i % 10 < 7:
            string = json.dumps({"username": f"user-{i}", "password": f"pw-{i:08d}", "host": f"db-{i % 7}.internal",
                                 "port": 5432})
        elif i % 10 < 9:
            string = f"token-{i:08d}"
        else:
            binary = base64.b64encode(f"binary-{i}".encode() + bytes(range(16))).decode()
        backend.create_secret(name=name, secret_string=string, secret_binary=binary, description=None,
                              tags=[{"Key": "team", "Value": f"team-{i % 50:02d}"}, {"Key": "env", "Value": "bench"}],
                              kms_key_id=None, client_request_token=None, replica_regions=[], force_overwrite=False)


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def run(command: list[str], env: dict[str, str]) -> tuple[float, float, int, str]:
    """Wall seconds, CPU seconds of the command's process, exit code, output."""
    start, cpu = time.perf_counter(), _children_cpu()
    proc = subprocess.run([sys.executable, "-m", "migration", *command], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=1800, check=False)
    return time.perf_counter() - start, _children_cpu() - cpu, proc.returncode, proc.stdout + proc.stderr


def measure(flavor: str, count: int, workers: int) -> dict[str, float]:
    import requests
    from moto.server import ThreadedMotoServer

    # moto's server logs every request; the figures are what matters here.
    logging.getLogger("werkzeug").setLevel(logging.ERROR)

    port = servers.free_port()
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    moto.start()
    url = f"http://127.0.0.1:{port}"
    requests.post(f"{url}/moto-api/reset", timeout=30).raise_for_status()
    binary = servers.find_server_binary(flavor) if flavor == "openbao" else servers.build_server_binary()
    work = Path(tempfile.mkdtemp(prefix="migration-bench-"))
    vault = servers.start_dev_server(binary, work)
    try:
        seed(count)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "VAULT_"))}
        env.update({"AWS_ENDPOINT_URL": url, "AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench",
                    "AWS_DEFAULT_REGION": REGION, "VAULT_ADDR": vault.api_addr, "VAULT_TOKEN": vault.root_token or ""})
        common = ["--map", "bench/=imported/", "--quiet", "--workers", str(workers)]
        figures = {}
        expected = {"plan": 0, "apply": 0, "re-apply": 0, "verify": 0}
        for label, command in (("plan", ["plan", *common]),
                               ("apply", ["apply", *common, "--report", str(work / "apply.jsonl")]),
                               ("re-apply", ["apply", *common, "--report", str(work / "again.jsonl")]),
                               ("verify", ["verify", *common, "--report", str(work / "verify.jsonl")])):
            seconds, cpu, code, output = run(command, env)
            if code != expected[label]:
                raise RuntimeError(f"{label} exited {code}:\n{output[-3000:]}")
            figures[label] = seconds
            figures[f"{label} cpu"] = cpu
        again = [json.loads(line) for line in (work / "again.jsonl").read_text().splitlines()]
        summary = again[-1]["summary"]
        if summary["counts"] != {"unchanged": count}:
            raise RuntimeError(f"the re-run was not idempotent: {summary['counts']}")
        return figures
    finally:
        vault.stop()
        vault.remove_data_dir()
        moto.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="1000,10000", help="comma-separated secret counts")
    parser.add_argument("--flavors", default="openbao,vault", help="server flavours to run against")
    parser.add_argument("--workers", type=int, default=8)
    args = parser.parse_args()
    sizes = sorted({int(s) for s in args.sizes.split(",")})
    ok = True
    # The machine may be shared: the load, and the command's own CPU time, say how much that weighs.
    print(f"load average at start: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print(f"{'flavour':<9}{'secrets':>8}{'plan s':>9}{'apply s':>9}{'re-apply s':>12}{'verify s':>10}"
          f"{'apply ms/secret':>17}{'apply cpu s':>13}")
    for flavor in args.flavors.split(","):
        rows = []
        for n in sizes:
            f = measure(flavor, n, args.workers)
            rows.append((n, f))
            print(f"{flavor:<9}{n:>8}{f['plan']:>9.1f}{f['apply']:>9.1f}{f['re-apply']:>12.1f}{f['verify']:>10.1f}"
                  f"{1000 * f['apply'] / n:>17.2f}{f['apply cpu']:>13.1f}", flush=True)
        for n, f in rows:
            if n >= 10000 and f["apply"] > MAX_APPLY_SECONDS_AT_10000 * n / 10000:
                print(f"  {flavor}: apply of {n} took {f['apply']:.1f} s, over the {MAX_APPLY_SECONDS_AT_10000:.0f} s "
                      "per 10,000 target")
                ok = False
        if len(rows) >= 2:
            (n0, f0), (n1, f1) = rows[0], rows[-1]
            ratio = (f1["apply"] / n1) / (f0["apply"] / n0)
            print(f"  {flavor}: apply time per secret at {n1} is {ratio:.2f}x that at {n0} (linear: at most "
                  f"{MAX_SLOPE_RATIO:.1f}x)")
            ok = ok and ratio <= MAX_SLOPE_RATIO
    print(f"load average at the end: {' '.join(f'{x:.1f}' for x in os.getloadavg())}")
    print("targets met" if ok else "TARGETS MISSED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
