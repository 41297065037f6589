#!/usr/bin/env python3
"""Time to a ready 3-node Raft cluster (started from our rendered HCL, initialized by VaultInit,
auto-unsealed through transit) and the failover time after the leader's process is killed.

    python benchmarks/cluster_failover.py [--rounds N]

Prints figures; it asserts nothing about how fast they are.
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration import servers  # noqa: E402
from tests.integration.bootstrap_steps import init_and_wait  # noqa: E402
from tests.integration.raft_cluster import start_cluster  # noqa: E402


def one_round(binary: Path) -> tuple[float, float, float]:
    workdir = Path(tempfile.mkdtemp(prefix="vault-platform-bench-"))
    cluster = None
    try:
        t0 = time.monotonic()
        cluster = start_cluster(binary, workdir)
        started = time.monotonic() - t0
        outs, wait = init_and_wait({
            "address": cluster.nodes[0].api_addr, "ca_cert_pem": Path(cluster.tls.ca_cert).read_text(),
            "mode": "auto", "shares": 3, "threshold": 2, "pgp_keys": [], "root_token_pgp_key": "",
            "unseal_addresses": [], "expected_peers": 3, "timeout_seconds": 120, "existing_token": None,
        })
        if wait["status"] != "ready":
            raise RuntimeError(wait["status"])
        ready = time.monotonic() - t0
        token = outs["root_token"]
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
        failover = time.monotonic() - t1
        return started, ready, failover
    finally:
        if cluster is not None:
            cluster.stop()
        shutil.rmtree(workdir, ignore_errors=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    binary = servers.find_server_binary()
    if binary is None:
        print("no Vault server binary: run tools/vault-server/build.sh", file=sys.stderr)
        return 2
    rows = [one_round(binary) for _ in range(max(1, min(args.rounds, 20)))]
    print(f"server binary: {binary}")
    print(f"{'round':>5} {'processes up (s)':>17} {'initialized + 3 members (s)':>28} "
          f"{'failover to next write (s)':>27}")
    for i, (started, ready, failover) in enumerate(rows, 1):
        print(f"{i:>5} {started:>17.2f} {ready:>28.2f} {failover:>27.2f}")
    for label, index in (("time to ready", 1), ("failover", 2)):
        values = [r[index] for r in rows]
        print(f"{label}: median {statistics.median(values):.2f} s, max {max(values):.2f} s over {len(values)} rounds")
    return 0


if __name__ == "__main__":
    sys.exit(main())
