#!/usr/bin/env python3
"""Raft clusters started from our rendered HCL (prod timing: performance_multiplier 1), initialized
by VaultInit, auto-unsealed through transit:

- time to a ready 3-node cluster, and failover: from killing the leader's process to the next write
  accepted (several rounds);
- a full leader-aware rolling restart (scripts/vault_rollout.py against a test double of the
  Kubernetes API that restarts a process where the API server would delete a pod) of 3 and 5 nodes.

    python benchmarks/cluster_failover.py [--rounds N] [--flavor vault|openbao] [--roll 3,5]
    python benchmarks/cluster_failover.py --multiplier 5     # Vault's default timing, for comparison

Prints figures; it asserts nothing about how fast they are.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration import servers  # noqa: E402
from tests.integration.fake_statefulset import FakeStatefulSet  # noqa: E402
from tests.integration.raft_cluster import start_cluster  # noqa: E402
from tests.integration.rollout_support import SCRIPT, init  # noqa: E402


def failover_round(binary: Path, multiplier: int) -> tuple[float, float, float]:
    workdir = Path(tempfile.mkdtemp(prefix="vault-platform-bench-"))
    cluster = None
    try:
        t0 = time.monotonic()
        cluster = start_cluster(binary, workdir, performance_multiplier=multiplier)
        started = time.monotonic() - t0
        token = init(cluster)
        ready = time.monotonic() - t0
        leader = cluster.leader()
        servers.api("POST", leader.api_addr, "sys/mounts/secret", token=token, ca=cluster.tls.ca_cert,
                    json={"type": "kv", "options": {"version": "2"}})
        t1 = time.monotonic()
        leader.kill()
        deadline = t1 + 120
        while time.monotonic() < deadline:
            try:
                new = cluster.leader(timeout=1)
                servers.api("POST", new.api_addr, "secret/data/after-failover", token=token, ca=cluster.tls.ca_cert,
                            json={"data": {"ok": "yes"}})
                break
            except Exception:  # election still running
                time.sleep(0.05)
        else:
            raise RuntimeError("no write accepted within 120 s of killing the leader")
        return started, ready, time.monotonic() - t1
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def rolling_restart(binary: Path, replicas: int, multiplier: int) -> tuple[float, int]:
    """Seconds for a full roll of ``replicas`` nodes to a new revision, and how many were restarted."""
    workdir = Path(tempfile.mkdtemp(prefix="vault-platform-bench-"))
    cluster = fake = None
    try:
        cluster = start_cluster(binary, workdir, replicas=replicas, performance_multiplier=multiplier)
        token = init(cluster)
        fake = FakeStatefulSet(cluster)
        fake.roll_out("vault-rev2", lambda i, node: node.config_path.write_text(cluster.render(i)))
        (workdir / "sa-token").write_text(fake.token)
        env = {"PATH": os.environ.get("PATH", ""), "ROLLOUT_NAMESPACE": "vault", "ROLLOUT_RELEASE": "vault",
               "ROLLOUT_REPLICAS": str(replicas), "ROLLOUT_POD_TIMEOUT": "300", "KUBERNETES_API": fake.url,
               "KUBERNETES_TOKEN_PATH": str(workdir / "sa-token"), "VAULT_CACERT": cluster.tls.ca_cert,
               "VAULT_TOKEN": token}
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, str(SCRIPT), "restart"], env=env, capture_output=True, text=True,
                              timeout=replicas * 400, check=False)
        took = time.monotonic() - t0
        if proc.returncode != 0:
            raise RuntimeError(f"the roll failed:\n{proc.stderr[-2000:]}")
        return took, len(fake.deletions())
    finally:
        if fake is not None:
            fake.close()
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--flavor", choices=servers.FLAVORS, default="vault")
    parser.add_argument("--multiplier", type=int, default=1, help="Raft performance_multiplier (default: prod's 1)")
    parser.add_argument("--roll", default="3,5", help="cluster sizes to time a rolling restart of ('' for none)")
    args = parser.parse_args()
    binary = servers.find_server_binary(args.flavor)
    if binary is None:
        print(f"no {args.flavor} server binary: run tools/vault-server/build.sh (vault) or install the venv "
              "(openbao)", file=sys.stderr)
        return 2
    print(f"server binary: {binary} ({args.flavor}), performance_multiplier {args.multiplier}")
    rows = [failover_round(binary, args.multiplier) for _ in range(max(1, min(args.rounds, 20)))]
    print(f"{'round':>5} {'processes up (s)':>17} {'initialized + 3 members (s)':>28} "
          f"{'failover to next write (s)':>27}")
    for i, (started, ready, failover) in enumerate(rows, 1):
        print(f"{i:>5} {started:>17.2f} {ready:>28.2f} {failover:>27.2f}")
    for label, index in (("time to ready", 1), ("failover", 2)):
        values = [r[index] for r in rows]
        print(f"{label}: median {statistics.median(values):.2f} s, max {max(values):.2f} s over {len(values)} rounds")
    for size in [int(s) for s in args.roll.split(",") if s.strip()]:
        took, restarted = rolling_restart(binary, size, args.multiplier)
        print(f"rolling restart of {size} nodes: {took:.1f} s ({restarted} restarted, {took / restarted:.1f} s each)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
