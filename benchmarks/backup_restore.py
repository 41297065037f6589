#!/usr/bin/env python3
"""How long a backup and a restore take for 10,000 secrets, against a real Raft node.

    venv/bin/python benchmarks/backup_restore.py [--secrets 10000] [--workers 32]

Starts one Raft node on 127.0.0.1, writes N KV v2 secrets through the API (a bounded thread pool;
nothing bypasses Vault), then times:
  snapshot  `scripts/backup.sh snapshot` with a raft-backup-only token (login skipped: VAULT_TOKEN),
            including its integrity checks; prints the snapshot size
  restore   `scripts/restore.sh --yes` back into the same node, until it is active again; and
            `scripts/restore.sh --force --yes` into a FRESH node (sealed by the source's keys after),
            then unsealing it with the source's keys
  verify    reading every secret back (all N must match)
Needs only the Vault binary (tools/vault-server/build.sh); no S3, no aws CLI.
"""

from __future__ import annotations

import argparse
import os
import pathlib
import secrets
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import requests

ROOT = pathlib.Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from components.render.policies import BACKUP_POLICY, backup_policy, render  # noqa: E402
from tests.integration import servers  # noqa: E402

_local = threading.local()


def _session() -> requests.Session:
    if not hasattr(_local, "session"):
        _local.session = requests.Session()
    return _local.session


def _call(method: str, addr: str, path: str, token: str, body: dict | None = None) -> requests.Response:
    resp = _session().request(method, f"{addr}/v1/{path}", json=body, timeout=60,
                              headers={"X-Vault-Token": token, "X-Vault-Request": "true"})
    if resp.status_code not in (200, 204):
        raise RuntimeError(f"{method} {path}: {resp.status_code} {resp.text[:200]}")
    return resp


def _script(name: str, *args: str, env: dict[str, str]) -> tuple[float, subprocess.CompletedProcess[str]]:
    started = time.perf_counter()
    proc = subprocess.run(["sh", str(ROOT / "scripts" / name), *args], env=env, capture_output=True, text=True,
                          timeout=1800, stdin=subprocess.DEVNULL, check=False)
    return time.perf_counter() - started, proc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--secrets", type=int, default=10_000)
    parser.add_argument("--workers", type=int, default=32)
    args = parser.parse_args(argv)

    binary = servers.find_server_binary()
    if binary is None:
        print("no Vault binary: run `bash tools/vault-server/build.sh`", file=sys.stderr)
        return 1
    version = subprocess.run([str(binary), "version"], capture_output=True, text=True, check=False).stdout.strip()
    work = pathlib.Path(tempfile.mkdtemp(prefix="vault-platform-bench-"))
    source = fresh = None
    try:
        source = servers.start_raft_node(binary, work, node_id="source")
        root, keys = source.init_and_unseal()
        servers.mount_kv_v2(lambda method, path, json=None: servers.api(method, source.api_addr, path, token=root,
                                                                        json=json))
        values = {f"bench/s{i:06d}": secrets.token_urlsafe(24) for i in range(args.secrets)}

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            list(pool.map(lambda kv: _call("POST", source.api_addr, f"secret/data/{kv[0]}", root,
                                           {"data": {"value": kv[1]}}), values.items()))
        write_s = time.perf_counter() - started

        _call("PUT", source.api_addr, f"sys/policies/acl/{BACKUP_POLICY}", root, {"policy": render(backup_policy())})
        token = _call("POST", source.api_addr, "auth/token/create", root,
                      {"policies": [BACKUP_POLICY], "no_default_policy": True}).json()["auth"]["client_token"]
        home = work / "home"
        home.mkdir()
        base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": str(home), "TMPDIR": str(home),
                "VAULT_BIN": str(binary)}
        snapdir = work / "snapshot"
        snapshot_s, proc = _script("backup.sh", "snapshot", env={**base, "VAULT_ADDR": source.api_addr,
                                                                  "VAULT_TOKEN": token, "SNAPSHOT_DIR": str(snapdir)})
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return 1
        [snap] = sorted(snapdir.glob("vault-*.snap"))
        size = snap.stat().st_size

        # The common case: back into the running cluster it came from (same keys), until active again.
        inplace_s, proc = _script("restore.sh", "--yes", "--wait", "120", str(snap),
                                  env={**base, "VAULT_ADDR": source.api_addr, "VAULT_TOKEN": root})
        if proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return 1

        fresh = servers.start_raft_node(binary, work, node_id="fresh")
        fresh_root, _ = fresh.init_and_unseal()
        restore_s, proc = _script("restore.sh", "--force", "--yes", "--wait", "120", str(snap),
                                  env={**base, "VAULT_ADDR": fresh.api_addr, "VAULT_TOKEN": fresh_root})
        unseal_s = 0.0
        if proc.returncode == 3:  # shamir: the restored data opens with the source cluster's keys
            started = time.perf_counter()
            fresh.unseal(keys)
            fresh.wait_until_active(timeout=120)
            unseal_s = time.perf_counter() - started
        elif proc.returncode != 0:
            print(proc.stderr, file=sys.stderr)
            return 1

        started = time.perf_counter()
        with ThreadPoolExecutor(max_workers=args.workers) as pool:
            got = list(pool.map(lambda path: _call("GET", fresh.api_addr, f"secret/data/{path}", root)
                                .json()["data"]["data"]["value"], values))
        read_s = time.perf_counter() - started
        lost = sum(1 for want, have in zip(values.values(), got, strict=True) if want != have)

        print(f"vault-platform backup/restore benchmark ({version}, one Raft node on loopback)")
        print(f"  secrets written         {args.secrets:>10,}   {write_s:8.2f} s  "
              f"({args.secrets / write_s:,.0f}/s, {args.workers} workers)")
        print(f"  snapshot (backup.sh)    {size / 2**20:>9.2f} MiB  {snapshot_s:8.2f} s  (save + checks)")
        print(f"  restore, same cluster   {'':>10}   {inplace_s:8.2f} s  (restore.sh: check + restore + until active)")
        print(f"  restore, fresh cluster  {'--force':>10}   {restore_s:8.2f} s  "
              "(restore.sh: check + restore + 10 s to be sure it stays sealed)")
        if unseal_s:
            print(f"  unseal with source keys {'':>10}   {unseal_s:8.2f} s")
        print(f"  read back               {args.secrets:>10,}   {read_s:8.2f} s  lost: {lost}")
        return 0 if lost == 0 else 1
    finally:
        for node in (source, fresh):
            if node is not None:
                node.stop()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
