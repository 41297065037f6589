"""The walkthrough's backup step: a Job from the backup CronJob writes a snapshot; the Vault pods' data
volumes are wiped; the runbook's restore "Into a fresh cluster" (docs/backup-and-restore.md) brings
the data back, every secret of it.

The commands below are the runbook's, run as written (a unit test checks the runbook still says
them); only what needs a terminal is done without one (the throwaway pod runs `sleep`, restore.sh
gets --yes), and placeholders are filled in.
"""

from __future__ import annotations

import json
import os
import pathlib
import re
import shutil
import socket
import subprocess
import time
from typing import Any

from tests.e2e.kube import E2EError, kubectl, kubectl_json, kubectl_path, server_pods, wait

ROOT = pathlib.Path(__file__).resolve().parents[2]
RUNBOOK = ROOT / "docs" / "backup-and-restore.md"
SECRETS = int(os.environ.get("E2E_RESTORE_SECRETS", "100"))
# The runbook's commands (namespace, release and paths as the dev stack names them).
TAKE_BACKUP = "kubectl -n vault create job --from=cronjob/vault-backup vault-backup-manual-$(date +%s)"
COPY_OUT = "kubectl -n vault cp backup-shell:/backups/{file} ./{file}"
FORWARD_FIRST_POD = "kubectl -n vault port-forward pod/vault-0 8210:8200"
LOCAL_ADDRESS = "https://127.0.0.1:8210"
INIT = "vault operator init -key-shares=<shares> -key-threshold=<threshold>"
UNSEAL = "vault operator unseal"
RESTORE_FORCE = "sh scripts/restore.sh --force --verify-kv secret/myapp/config"
UNSEAL_POD = "kubectl -n vault exec {pod} -- vault operator unseal {key}"
VERIFY_ONLY = "sh scripts/restore.sh --verify-only --verify-kv secret/myapp/config"
RUNBOOK_COMMANDS = (TAKE_BACKUP, COPY_OUT.format(file="vault-20250101T060000Z.snap"), FORWARD_FIRST_POD,
                    f"export VAULT_ADDR={LOCAL_ADDRESS}", INIT, UNSEAL, RESTORE_FORCE,
                    UNSEAL_POD.format(pod="vault-0", key="<old key>"), VERIFY_ONLY)


def log(message: str) -> None:
    from tests.e2e.run import log as e2e_log

    e2e_log(message)


def vault_cli() -> pathlib.Path:
    out = subprocess.run(["bash", str(ROOT / "tools" / "vault-server" / "build.sh")], capture_output=True,
                         text=True, timeout=3600, check=True).stdout
    return pathlib.Path(out.strip().splitlines()[-1])


class Shell:
    """Runs the runbook's commands with kubectl and the vault CLI on PATH, in a folder of its own."""

    def __init__(self, workdir: pathlib.Path, env: dict[str, str]):
        self.workdir = workdir
        tools = {str(pathlib.Path(kubectl_path()).parent), str(vault_cli().parent)}
        self.env = {**os.environ, **env, "PATH": os.pathsep.join([*tools, os.environ.get("PATH", "")])}

    def __call__(self, command: str, *, env: dict[str, str] | None = None, ok: tuple[int, ...] = (0,),
                 timeout: float = 300) -> str:
        proc = subprocess.run(["sh", "-c", command], cwd=self.workdir, env={**self.env, **(env or {})},
                              capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode not in ok:
            raise E2EError(f"`{command}` exited {proc.returncode}:\n{proc.stdout[-1500:]}\n{proc.stderr[-1500:]}")
        return proc.stdout + proc.stderr


def secrets_under(vault: Any, folder: str) -> dict[str, str]:
    mount, _, rest = folder.partition("/")
    status, listing = vault.call("LIST", f"{mount}/metadata/{rest}")
    if status == 404:
        return {}
    found = {}
    for key in listing["data"]["keys"]:
        found[key] = vault.ok("GET", f"{mount}/data/{rest}/{key}")["data"]["data"]["v"]
    return found


def inventory(vault: Any) -> dict[str, list[str]]:
    """What the stack made in Vault, by name."""
    return {"mounts": sorted(vault.ok("GET", "sys/mounts")["data"]),
            "auth": sorted(vault.ok("GET", "sys/auth")["data"]),
            "policies": sorted(vault.ok("LIST", "sys/policies/acl")["data"]["keys"]),
            "roles": sorted(vault.ok("LIST", "auth/kubernetes/role")["data"]["keys"])}


def port_open(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), 1).close()
        return True
    except OSError:
        return False


def backup_job(namespace: str, shell: Shell) -> tuple[str, float]:
    """The runbook's on-demand backup: the Job's name and how long it ran."""
    out = shell(TAKE_BACKUP)
    job = re.search(r"job\.batch/(\S+) created", out)
    if not job:
        raise E2EError(f"no Job made: {out}")
    name = job.group(1)
    wait(f"Job {name} complete", 300, lambda: kubectl_json("-n", namespace, "get", "job", name)
         .get("status", {}).get("succeeded") == 1 or _job_failed(namespace, name))
    from tests.e2e.walkthrough import job_times

    took, _ = job_times(namespace, name)
    store = kubectl("-n", namespace, "logs", f"job/{name}", "-c", "store")
    if "backup: done:" not in store:
        raise E2EError(f"Job {name} did not store a snapshot: {store[-800:]}")
    return name, took


def _job_failed(namespace: str, name: str) -> bool:
    if kubectl_json("-n", namespace, "get", "job", name).get("status", {}).get("failed"):
        logs = kubectl("-n", namespace, "logs", f"job/{name}", "--all-containers", check=False)
        raise E2EError(f"backup Job {name} failed: {logs[-1500:]}")
    return False


def copy_newest_snapshot(w: Any, shell: Shell) -> pathlib.Path:
    """The runbook's "Where the snapshots are": a throwaway pod on the backup volume, `kubectl cp`."""
    namespace = w.namespace
    image = w.image(f"{w.c.cluster.image.repository}:{w.c.cluster.image.tag}")
    claim = w.engine.outputs()["backupVolumeClaim"]
    overrides = {"spec": {"securityContext": {"runAsUser": 100, "runAsNonRoot": True},
                          "containers": [{"name": "backup-shell", "image": image, "command": ["sleep", "600"],
                                          "volumeMounts": [{"name": "b", "mountPath": "/backups"}]}],
                          "volumes": [{"name": "b", "persistentVolumeClaim": {"claimName": claim}}]}}
    kubectl("-n", namespace, "run", "backup-shell", "--restart=Never", f"--image={image}",
            f"--overrides={json.dumps(overrides)}")
    try:
        wait("backup-shell Running", 120, lambda: kubectl_json("-n", namespace, "get", "pod", "backup-shell")
             .get("status", {}).get("phase") == "Running")
        files = sorted(kubectl("-n", namespace, "exec", "backup-shell", "--", "ls", "/backups").split())
        snaps = [f for f in files if re.fullmatch(r"vault-\d{8}T\d{6}Z\.snap", f)]
        if not snaps:
            raise E2EError(f"no snapshot on the backup volume: {files}")
        shell(COPY_OUT.format(file=snaps[-1]))
        return shell.workdir / snaps[-1]
    finally:
        kubectl("-n", namespace, "delete", "pod", "backup-shell", "--wait=false", "--ignore-not-found", check=False)


def wipe(namespace: str, release: str) -> None:
    """The disaster: every Vault pod's data volume gone. The StatefulSet makes new, empty ones."""
    pods = sorted(p["metadata"]["name"] for p in server_pods(namespace))
    kubectl("-n", namespace, "delete", "pvc", *(f"data-{p}" for p in pods), "--wait=false")
    kubectl("-n", namespace, "delete", "pod", *pods, "--wait=true", timeout=300)
    from tests.e2e.run import pod_status

    wait("every pod back, uninitialized", 300, lambda: len(server_pods(namespace)) == len(pods) and all(
        pod_status(namespace, p).get("initialized") is False for p in pods))


def unseal_pod(shell: Shell, pod: str, key: str) -> bool:
    """The runbook's unseal of one pod: True once it took the key, False while it has not joined."""
    try:
        shell(UNSEAL_POD.format(pod=pod, key=key))
        return True
    except E2EError as e:
        if "not initialized" in str(e):
            return False
        raise


def walk(w: Any) -> None:
    from tests.e2e.walkthrough import figure

    namespace = w.namespace
    if w.c.backup.target != "volume" or w.c.unseal.type != "shamir":
        raise E2EError("the restore walkthrough is the dev stack's: backups to a volume, Shamir unseal")
    workdir = pathlib.Path(__file__).resolve().parents[2] / ".e2e" / "restore"
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    # The runbook runs from a checkout: its scripts/ beside the files the commands write.
    (workdir / "scripts").symlink_to(ROOT / "scripts")
    outputs = w.engine.outputs()
    old_root, old_keys = outputs["rootToken"], list(outputs["unsealKeys"])
    (workdir / "vault-ca.pem").write_text(outputs["caCertificate"])
    shell = Shell(workdir, {"VAULT_CACERT": str(workdir / "vault-ca.pem")})
    vault = w.vault
    folder = f"{w.c.kv.path}/e2e/restore-{w.nonce}"
    mount, _, rest = folder.partition("/")
    for n in range(SECRETS):
        vault.ok("POST", f"{mount}/data/{rest}/s{n:03d}", {"data": {"v": f"value-{n}-{w.nonce}"}})
    before = secrets_under(vault, folder)
    # The application's secret, as the injector step writes it (this step may run on its own).
    if vault.call("GET", f"{mount}/data/myapp/config")[0] == 404:
        vault.ok("POST", f"{mount}/data/myapp/config", {"data": {"database_url": f"db-{w.nonce}",
                                                                 "api_key": f"key-{w.nonce}"}})
    app_secret = vault.ok("GET", f"{mount}/data/myapp/config")["data"]["data"]
    stack_objects = inventory(vault)

    job, backup_took = backup_job(namespace, shell)
    snapshot = copy_newest_snapshot(w, shell)
    figure(w.figures, "backup_job_seconds", round(backup_took, 1),
           f"backup Job {job} (from the CronJob) wrote {snapshot.name}, {snapshot.stat().st_size} bytes, in "
           f"{backup_took:.0f}s")
    vault.ok("POST", f"{mount}/data/{rest}/after-backup", {"data": {"v": "written after the snapshot"}})

    start = time.monotonic()
    wipe(namespace, w.c.cluster.release_name)
    log(f"wiped: every data volume deleted, {len(server_pods(namespace))} empty pods uninitialized "
        f"({time.monotonic() - start:.0f}s)")
    # The runbook: with the old state, `pulumi up` refuses to initialize the empty Vault.
    refused_at = time.monotonic()
    try:
        w.engine.up()
    except Exception as e:
        if "initialized it before" not in str(e):
            raise E2EError(f"pulumi up on the wiped cluster failed for another reason: {str(e)[-1500:]}") from e
    else:
        raise E2EError("pulumi up on the wiped cluster went through")
    from tests.e2e.run import pod_status

    if any(pod_status(namespace, p["metadata"]["name"]).get("initialized") for p in server_pods(namespace)):
        raise E2EError("pulumi up initialized the wiped Vault")
    figure(w.figures, "wiped_up_refused_seconds", round(time.monotonic() - refused_at, 1),
           f"pulumi up on the wiped cluster refused in {time.monotonic() - refused_at:.0f}s, Vault left "
           "uninitialized")

    restore_start = time.monotonic()
    forward = subprocess.Popen(
        ["sh", "-c", f"exec {FORWARD_FIRST_POD}"], cwd=workdir, env=shell.env, stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL)
    try:
        wait("the port-forward to vault-0", 30, lambda: port_open(8210), every=0.5)
        local = {"VAULT_ADDR": LOCAL_ADDRESS}
        # The old cluster's numbers, as the runbook says: the restored seal asks for them.
        init_command = INIT.replace("<shares>", str(w.c.init.shares)).replace("<threshold>", str(w.c.init.threshold))
        init = json.loads(shell(f"{init_command} -format=json", env=local))
        new_keys, new_root = init["unseal_keys_b64"], init["root_token"]
        for key in new_keys[:init["unseal_threshold"]]:
            shell(f"{UNSEAL} {key}", env=local)
        wait("vault-0 active", 60, lambda: '"is_self": true' in shell("vault read -format=json sys/leader",
                                                                      env={**local, "VAULT_TOKEN": new_root}))
        out = shell(f"{RESTORE_FORCE} --yes ./{snapshot.name}", ok=(3,), timeout=300,
                    env={**local, "VAULT_TOKEN": new_root, "RESTORE_VERIFY_TOKEN": old_root})
        log("restore.sh --force: exit 3, sealed under the old cluster's keys, as the runbook says")
        for pod in sorted(p["metadata"]["name"] for p in server_pods(namespace)):
            for key in old_keys[:w.c.init.threshold]:
                # The others join the restored cluster by themselves once it is unsealed; until then
                # they answer "Vault is not initialized", and the runbook says to repeat.
                wait(f"{pod} takes the old key", 120, lambda pod=pod, key=key: unseal_pod(shell, pod, key), every=3)
        out = shell(VERIFY_ONLY, env={**local, "VAULT_TOKEN": old_root}, timeout=300)
        if "restore: verified" not in out:
            raise E2EError(f"restore.sh --verify-only: {out}")
    finally:
        forward.terminate()
        forward.wait(timeout=30)
    restore_took = time.monotonic() - restore_start
    from tests.e2e.walkthrough import voters

    wait("every pod a Raft voter again", 180, lambda: voters(w) == w.c.cluster.replicas)
    after = secrets_under(vault, folder)
    lost = sorted(set(before) - set(after))
    changed = sorted(k for k in before if k in after and after[k] != before[k])
    if lost or changed:
        raise E2EError(f"after the restore {len(lost)} secrets are missing and {len(changed)} differ: "
                       f"{(lost + changed)[:10]}")
    if "after-backup" in after:
        raise E2EError("a secret written after the snapshot survived: the data was not replaced by the restore")
    if vault.ok("GET", f"{mount}/data/myapp/config")["data"]["data"] != app_secret:
        raise E2EError("the application's secret is not the snapshot's")
    if inventory(vault) != stack_objects:
        raise E2EError(f"the stack's objects differ after the restore: {inventory(vault)} vs {stack_objects}")
    up_start = time.monotonic()
    from tests.e2e.run import changes

    result = w.engine.up()
    log(f"pulumi up after the restore: {time.monotonic() - up_start:.0f}s, {changes(result) or 'no changes'}")
    after_job, _ = backup_job(namespace, shell)
    figure(w.figures, "restore", {"procedure_seconds": round(restore_took, 1), "secrets": len(before),
                                  "restored": len(after), "lost": len(lost)},
           f"restore into the wiped cluster by the runbook: {restore_took:.0f}s from the port-forward to "
           f"verified; {len(after)} of {len(before)} secrets back, {len(lost)} lost; mounts, auth methods, "
           f"policies and roles as before; backup Job {after_job} after it")
