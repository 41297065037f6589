#!/usr/bin/env python3
"""The figures of the last `make e2e` (not a timed test): the dev stack on a real cluster, each step
in real pods (docs/real-cluster.md). `make e2e` writes them to .e2e/figures.json; this prints them.

    venv/bin/python benchmarks/e2e_figures.py [figures.json]

Without a file (no `make e2e` ran here) it says so: the run needs a cluster (`make cluster`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

FIGURES = Path(__file__).resolve().parents[1] / ".e2e" / "figures.json"


def lines(f: dict[str, Any]) -> list[str]:
    out = []

    def add(label: str, value: Any) -> None:
        if value is not None:
            out.append(f"  {label:58} {value}")

    add("first `pulumi up` (s, resources)", _pair(f.get("first_up_seconds"), f.get("first_up_resources")))
    add("first `pulumi up` start -> 3 pods Ready, unsealed (s)", f.get("time_to_ready_seconds"))
    add("Raft voters", f.get("raft_voters"))
    add("injector: pod Ready (s); file re-rendered after a change (s)",
        _pair(f.get("injector_pod_ready_seconds"), f.get("injector_rerender_seconds")))
    add("ExternalSecret synced after a forced sync (s)", f.get("external_secret_sync_seconds_myapp"))
    add("another namespace's store refused", f.get("external_secrets_cross_namespace_refused"))
    add("database login refused after the lease revocation (s)", f.get("database_revoked_login_refused_seconds"))
    failover = f.get("failover_seconds") or {}
    if failover:
        add("failover: delete -> first write accepted, median/max (s)",
            f"{failover.get('median')} / {failover.get('max')} over {len(failover.get('rounds', []))} rounds")
    add("failover: deleted pod back sealed (s); unsealed by `pulumi up` (s)",
        _pair(f.get("failover_pod_back_sealed_seconds"), f.get("failover_unseal_up_seconds")))
    roll = f.get("rolling_restart") or {}
    if roll:
        add("rolling restart: Job (s), pods", _pair(roll.get("job_seconds"), roll.get("pods")))
        add("rolling restart: writes accepted / refused / LOST",
            f"{roll.get('writes_accepted')} / {roll.get('writes_failed')} / {roll.get('writes_lost')}")
        add("rolling restart: longest gap between accepted writes (s)", roll.get("longest_write_gap_seconds"))
    add("PDB blocks an eviction while one pod is sealed", f.get("pdb_blocks_eviction_with_one_sealed"))
    add("backup Job (s)", f.get("backup_job_seconds"))
    restore = f.get("restore") or {}
    if restore:
        add("restore into a wiped cluster: procedure (s)", restore.get("procedure_seconds"))
        add("restore: secrets back / written / LOST",
            f"{restore.get('restored')} / {restore.get('secrets')} / {restore.get('lost')}")
    add("NetworkPolicy enforced by this cluster's CNI", f.get("network_policy_enforced"))
    add("cert-manager", f.get("cert_manager"))
    return out


def _pair(a: Any, b: Any) -> str | None:
    return None if a is None and b is None else f"{a}, {b}"


def main(argv: list[str]) -> int:
    path = Path(argv[0]) if argv else FIGURES
    if not path.is_file():
        print(f"no figures at {path}: `make cluster` (as root) then `make e2e` writes them")
        return 0
    print(f"make e2e figures ({path}):")
    print("\n".join(lines(json.loads(path.read_text()))))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
