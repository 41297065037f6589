"""The walkthrough on the deployed e2e stack, in real pods (`make e2e`; `python -m tests.e2e.run
walkthrough [STEP ...]` against a stack already up). Each step asserts what the stack promises and
prints its figures (lines starting "FIGURE"):

  injector          a pod with exactly the annotations the stack exports gets its secret file from the
                    injected Vault Agent (TLS verified with the stack's CA), and again after the KV value changes
  external-secrets  each ExternalSecret the stack made becomes a Secret with the KV values; another
                    namespace's store is refused the first namespace's secret
  database          the application logs in to the dev PostgreSQL with the injected credentials; once
                    their lease is revoked the same login fails
  cert-manager      cannot run here (not built); says so
  network-policy    whether the cluster enforces NetworkPolicies, and if so, that the stack's does what it says
  readiness         a sealed pod is not Ready and gets no Service traffic; the PodDisruptionBudget
                    refuses an eviction that would leave too few unsealed pods; `pulumi up` unseals it
  failover          the active pod deleted, rounds times: time to the first accepted write; the pod back
                    sealed and not Ready until the next `pulumi up` unseals it
  rolling-restart   a server setting changed, `pulumi up`: the restart Job restarts the standbys, then the
                    leader after a step-down, while a client keeps writing (accepted, failed, lost)
  backup-restore    a Job from the backup CronJob writes a snapshot; the data volumes wiped; the restore
                    of docs/backup-and-restore.md ("Into a fresh cluster") brings every secret back
"""

from __future__ import annotations

import base64
import json
import os
import statistics
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from tests.e2e import restore
from tests.e2e.kube import (
    E2EError,
    Vault,
    apply,
    endpoints,
    is_ready,
    kubectl,
    kubectl_json,
    pod_logs,
    server_pods,
    wait,
)

FAILOVER_ROUNDS = int(os.environ.get("E2E_FAILOVER_ROUNDS", "5"))
# Vault Agent re-reads a secret without a lease (KV) every 5 minutes by default
# (template_config.static_secret_render_interval), which the stack's annotations keep.
RERENDER_LIMIT = 420


def log(message: str) -> None:
    from tests.e2e.run import log as e2e_log

    e2e_log(message)


def figure(figures: dict[str, Any], key: str, value: Any, text: str) -> None:
    figures[key] = value
    log(f"FIGURE {text}")


@dataclass
class Walk:
    engine: Any
    figures: dict[str, Any]
    times: dict[str, float]
    pending: list[tuple[str, threading.Thread, list[BaseException]]] = field(default_factory=list)
    nonce: str = field(default_factory=lambda: uuid.uuid4().hex[:8])

    @property
    def c(self):
        return self.engine.typed

    @property
    def namespace(self) -> str:
        return self.c.kubernetes.namespace

    @property
    def vault(self) -> Vault:
        return self.engine.vault()

    def image(self, reference: str) -> str:
        from components.render.images import pulled_from

        return pulled_from(reference, self.c.images.registry)

    def later(self, what: str, check: Callable[[], None]) -> None:
        """Run ``check`` in the background; run() waits for it before the next disruptive step."""
        errors: list[BaseException] = []

        def target() -> None:
            try:
                check()
            except BaseException as e:
                errors.append(e)

        thread = threading.Thread(target=target, daemon=True, name=what)
        thread.start()
        self.pending.append((what, thread, errors))

    def settle(self) -> None:
        for what, thread, errors in self.pending:
            thread.join(timeout=RERENDER_LIMIT + 60)
            if thread.is_alive():
                raise E2EError(f"{what}: still running")
            if errors:
                raise E2EError(f"{what}: {errors[0]}")
        self.pending.clear()


# --- helpers -----------------------------------------------------------------------------------------

def active_pod(namespace: str) -> str | None:
    active = [p["metadata"]["name"] for p in server_pods(namespace)
              if p["metadata"].get("labels", {}).get("vault-active") == "true" and is_ready(p)]
    return active[0] if len(active) == 1 else None


def pod_sealed(namespace: str, pod: str) -> bool:
    from tests.e2e.run import pod_status

    return pod_status(namespace, pod).get("sealed") is True


def pod_uid(namespace: str, pod: str) -> str:
    out = kubectl("-n", namespace, "get", "pod", pod, "-o", "jsonpath={.metadata.uid}", check=False)
    return "" if "NotFound" in out else out.strip()


def kv_write(vault: Vault, path: str, data: dict[str, str]) -> None:
    mount, _, rest = path.partition("/")
    vault.ok("POST", f"{mount}/data/{rest}", {"data": data})


def exec_in(namespace: str, pod: str, container: str, script: str, check: bool = True, timeout: float = 60) -> str:
    return kubectl("-n", namespace, "exec", pod, "-c", container, "--", "sh", "-c", script, check=check,
                   timeout=timeout)


def unseal_with_up(w: Walk, what: str) -> float:
    """`pulumi up`, which unseals a restarted dev pod; its duration."""
    start = time.monotonic()
    result = w.engine.up()
    took = time.monotonic() - start
    from tests.e2e.run import changes

    log(f"pulumi up ({what}): {took:.0f}s, {changes(result) or 'no changes'}")
    return took


def voters(w: Walk) -> int:
    """Raft voters, or 0 while the configuration cannot be read (an election under way)."""
    from tests.e2e.run import raft_voters

    try:
        return len(raft_voters(w.vault))
    except E2EError:
        return 0


# --- 1. the Agent Injector ------------------------------------------------------------------------------

APP_POD = "e2e-app"


def injector_app(w: Walk):
    apps = [a for a in w.c.applications if a.uses_injector]
    if not apps:
        raise E2EError("no application of the e2e stack uses the injector")
    return apps[0]


def app_pod(w: Walk) -> tuple[str, str]:
    """The application's pod with exactly the exported annotations and volumes: (namespace, name)."""
    app = injector_app(w)
    export = w.engine.outputs()["applications"][app.name]
    if kubectl("-n", app.namespace, "get", "pod", APP_POD, check=False).startswith("NAME"):
        return app.namespace, APP_POD
    apply({"apiVersion": "v1", "kind": "Pod",
           "metadata": {"name": APP_POD, "namespace": export["namespace"], "labels": {"app": app.name},
                        "annotations": export["podAnnotations"]},
           "spec": {"serviceAccountName": export["serviceAccount"], "volumes": export["podVolumes"],
                    "restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                    # PostgreSQL's image: a shell, and psql for the database step.
                    "containers": [{"name": "app", "image": w.image(w.c.database.dev_postgres_image),
                                    "imagePullPolicy": "IfNotPresent", "command": ["/bin/sleep", "86400"]}]}})
    start = time.monotonic()
    wait(f"pod {APP_POD} Ready", 300, lambda: is_ready(kubectl_json("-n", app.namespace, "get", "pod", APP_POD)))
    figure(w.figures, "injector_pod_ready_seconds", round(time.monotonic() - start, 1),
           f"application pod with the injected agent Ready in {time.monotonic() - start:.0f}s")
    return app.namespace, APP_POD


def sourced(namespace: str, pod: str, file: str, variables: list[str]) -> dict[str, str]:
    """What a shell gets from `. <file>`: the variables the injector's template exports."""
    script = f". {file} && " + " && ".join(f'printf "%s\\0" "${v}"' for v in variables)
    values = exec_in(namespace, pod, "app", script).split("\0")[:-1]
    return dict(zip(variables, values, strict=True))


def injector(w: Walk) -> None:
    app = injector_app(w)
    secret = app.secrets[0]
    path = f"{w.c.kv.path}/{secret.path}"
    first = {prop: f"{prop}-{w.nonce}-1 'quoted'" for prop in secret.keys.values()}
    kv_write(w.vault, path, first)
    namespace, pod = app_pod(w)
    file = w.engine.outputs()["applications"][app.name]["secretFiles"][secret.name]
    got = sourced(namespace, pod, file, list(secret.keys))
    wanted = {variable: first[prop] for variable, prop in secret.keys.items()}
    if got != wanted:
        raise E2EError(f"{file} in {pod} gives {got}, not {wanted}")
    log(f"{file} rendered in {pod}: {sorted(got)}")
    # Over TLS with the stack's CA: the agent's own configuration, and the CA it was given.
    spec = kubectl_json("-n", namespace, "get", "pod", pod)["spec"]
    agent = next(c for c in spec["containers"] if c["name"] == "vault-agent")
    config = json.loads(base64.b64decode(next(e["value"] for e in agent["env"] if e["name"] == "VAULT_CONFIG")))
    address, ca_file = config["vault"]["address"], config["vault"].get("ca_cert", "")
    if not address.startswith("https://") or not ca_file or config["vault"].get("tls_skip_verify"):
        raise E2EError(f"the agent does not verify TLS with a CA: {config['vault']}")
    ca = kubectl("-n", namespace, "exec", pod, "-c", "vault-agent", "--", "cat", ca_file)
    if ca.strip() != w.engine.outputs()["caCertificate"].strip():
        raise E2EError(f"{ca_file} in the agent is not the stack's CA")
    if "authentication successful" not in pod_logs(namespace, pod, "vault-agent"):
        raise E2EError("the agent's log shows no successful login")
    log(f"the agent logs in to {address} with the stack's CA ({ca_file})")

    second = {prop: f"{prop}-{w.nonce}-2" for prop in secret.keys.values()}
    kv_write(w.vault, path, second)
    changed_at = time.monotonic()
    wanted2 = {variable: second[prop] for variable, prop in secret.keys.items()}

    def rerendered() -> None:
        wait(f"{file} re-rendered after the KV change", RERENDER_LIMIT,
             lambda: sourced(namespace, pod, file, list(secret.keys)) == wanted2, every=5)
        took = time.monotonic() - changed_at
        figure(w.figures, "injector_rerender_seconds", round(took, 1),
               f"{file} re-rendered {took:.0f}s after the KV value changed (Vault Agent's default "
               "static_secret_render_interval is 5m)")

    w.later("the injector's re-render", rerendered)


# --- 2. the External Secrets Operator ---------------------------------------------------------------------

def external_secret_status(namespace: str, name: str) -> dict[str, str]:
    es = kubectl_json("-n", namespace, "get", "externalsecret", name)
    ready = [c for c in es.get("status", {}).get("conditions", []) if c["type"] == "Ready"]
    return ready[0] if ready else {}


def secret_data(namespace: str, name: str) -> dict[str, str] | None:
    out = kubectl("-n", namespace, "get", "secret", name, "-o", "json", check=False)
    if "NotFound" in out or not out.startswith("{"):
        return None
    return {k: base64.b64decode(v).decode() for k, v in (json.loads(out).get("data") or {}).items()}


def force_sync(namespace: str, name: str) -> None:
    # The operator's documented way to read now instead of at the next refreshInterval.
    kubectl("-n", namespace, "annotate", "externalsecret", name, f"force-sync={time.time_ns()}", "--overwrite")


def external_secrets(w: Walk) -> None:
    apps = [a for a in w.c.applications if a.uses_external_secrets]
    if not apps:
        raise E2EError("no application of the e2e stack uses the External Secrets Operator")
    exports = w.engine.outputs()["applications"]
    for app in apps:
        secret = app.secrets[0]
        path = f"{w.c.kv.path}/{secret.path}"
        mount, _, rest = path.partition("/")
        status, body = w.vault.call("GET", f"{mount}/data/{rest}")
        current = body.get("data", {}).get("data") if status == 200 else None
        if not current:
            current = {prop: f"{prop}-{w.nonce}" for prop in secret.keys.values()}
            kv_write(w.vault, path, current)
        es = exports[app.name]["externalSecret"]
        wanted = {variable: current[prop] for s in app.secrets for variable, prop in s.keys.items()}
        start = time.monotonic()
        force_sync(app.namespace, es["name"])
        wait(f"Secret {app.namespace}/{es['secretName']} with the KV values", 120,
             lambda app=app, es=es, wanted=wanted: secret_data(app.namespace, es["secretName"]) == wanted)
        took = time.monotonic() - start
        figure(w.figures, f"external_secret_sync_seconds_{app.name}", round(took, 1),
               f"ExternalSecret {app.namespace}/{es['name']} -> Secret {es['secretName']} with the KV values "
               f"{took:.0f}s after a forced sync (store {es['store']})")
    # Another namespace's store, asked for the first application's secret, is refused by Vault.
    owner, other = apps[0], next((a for a in apps if a.namespace != apps[0].namespace), None)
    if other is None:
        raise E2EError("the e2e stack needs two namespaces with External Secrets to check isolation")
    secret = owner.secrets[0]
    prop = next(iter(secret.keys.values()))
    name = "e2e-cross-read"
    apply({"apiVersion": "external-secrets.io/v1", "kind": "ExternalSecret",
           "metadata": {"name": name, "namespace": other.namespace},
           "spec": {"refreshInterval": "1h", "secretStoreRef": {"kind": "SecretStore",
                                                                "name": exports[other.name]["externalSecret"]["store"]},
                    "target": {"name": name},
                    "data": [{"secretKey": "stolen", "remoteRef": {"key": secret.path, "property": prop}}]}})
    try:
        status = wait("the cross-namespace read refused", 120,
                      lambda: (s := external_secret_status(other.namespace, name)) and s.get("status") == "False"
                      and s)
        message = status.get("message", "")
        events = kubectl("-n", other.namespace, "get", "events", "--field-selector",
                         f"involvedObject.name={name}", "-o", "jsonpath={.items[*].message}", check=False)
        if secret_data(other.namespace, name) is not None:
            raise E2EError(f"Secret {other.namespace}/{name} was written from {owner.name}'s secret")
        if "403" not in events and "permission denied" not in events:
            raise E2EError(f"the refused read does not say Vault denied it: {message} / {events[-500:]}")
        log(f"store {other.namespace}/{exports[other.name]['externalSecret']['store']} asked for {secret.path}: "
            f"refused ({status.get('reason')}: permission denied by Vault)")
        w.figures["external_secrets_cross_namespace_refused"] = True
    finally:
        kubectl("-n", other.namespace, "delete", "externalsecret", name, "--ignore-not-found", check=False)


# --- 3. dynamic database credentials --------------------------------------------------------------------

def database(w: Walk) -> None:
    from components.render import vault_objects as vs

    app = injector_app(w)
    if not app.database_role or not w.c.database.dev_postgres:
        raise E2EError("the e2e stack's application has no database role on the dev PostgreSQL")
    namespace, pod = app_pod(w)
    creds_file = w.engine.outputs()["applications"][app.name]["secretFiles"]["db"]
    creds = exec_in(namespace, pod, "app", f"cat {creds_file}")
    host = f"{vs.DEV_POSTGRES_NAME}.{w.namespace}.svc"
    login = (f"{creds}\npsql -h {host} -p {vs.DEV_POSTGRES_PORT} -d {vs.DEV_POSTGRES_DB} -tAc "
             "'select current_user' 2>&1; echo \"exit=$?\"")
    first = exec_in(namespace, pod, "app", login)
    user = sourced(namespace, pod, creds_file, ["PGUSER"])["PGUSER"]
    if f"{user}\nexit=0" not in first:
        raise E2EError(f"the injected credentials do not log in: {first}")
    log(f"{pod} logged in to {host} as {user} (from database/creds/{app.database_role})")
    prefix = f"{w.c.database.path}/creds/{app.database_role}"
    leases = w.vault.ok("LIST", f"sys/leases/lookup/{prefix}")["data"]["keys"]
    start = time.monotonic()
    w.vault.ok("PUT", f"sys/leases/revoke-prefix/{prefix}")
    refused = wait("the revoked credentials refused", 60,
                   lambda: (out := exec_in(namespace, pod, "app", login, check=False)) and "exit=0" not in out and out)
    took = time.monotonic() - start
    if "password authentication failed" not in refused and "does not exist" not in refused:
        raise E2EError(f"the login after revocation failed for another reason: {refused}")
    figure(w.figures, "database_revoked_login_refused_seconds", round(took, 1),
           f"{len(leases)} lease(s) of {prefix} revoked; the same login refused {took:.1f}s later "
           f"(PostgreSQL: {refused.split('FATAL:', 1)[-1].strip().splitlines()[0][:90]})")


# --- 4. cert-manager ------------------------------------------------------------------------------------

def cert_manager(w: Walk) -> None:
    reason = ("cert-manager cannot be built here: the Go module proxy serves github.com/cert-manager/cert-manager "
              "(no commands) and answers 404 for its cmd/controller, cmd/webhook and cmd/cainjector modules")
    w.figures["cert_manager"] = "not run: " + reason
    log(f"NOT RUN: {reason}. The ClusterIssuer is checked under mocks and against cert-manager's CRD schema only.")


# --- 9. the NetworkPolicy ---------------------------------------------------------------------------------

PROBE = """import socket, sys
for port in sys.argv[2:]:
    try:
        socket.create_connection((sys.argv[1], int(port)), 3).close()
        print(port, "open")
    except OSError as e:
        print(port, "closed", type(e).__name__)
"""


def probe_ports(namespace: str, pod: str, container: str, ip: str, ports: list[int]) -> dict[int, bool]:
    out = kubectl("-n", namespace, "exec", pod, "-c", container, "--", "python3", "-c", PROBE, ip,
                  *map(str, ports), timeout=60)
    return {int(line.split()[0]): line.split()[1] == "open" for line in out.splitlines() if line.strip()}


def network_policy(w: Walk) -> None:
    from components.model.names import API_PORT, CLUSTER_PORT, Names
    from components.render.network_policy import network_policy as rendered

    names = Names.of(w.c)
    policy = kubectl_json("-n", w.namespace, "get", "networkpolicy", f"{names.release}-server")
    from components.render.delivery import api_client_namespaces

    wanted = rendered(names, w.c.cluster.network_policy, api_client_namespaces(w.c))
    if policy["spec"] != wanted["spec"]:
        raise E2EError(f"the NetworkPolicy in the cluster is not the stack's: {policy['spec']}")
    # A pod outside Vault's: the cluster port is Vault's own pods' only, the API port everyone's (dev).
    outsider = next((a.namespace for a in w.c.applications if a.create_namespace), "default")
    probe = "e2e-netpol-probe"
    apply({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": probe, "namespace": outsider},
           "spec": {"restartPolicy": "Never", "terminationGracePeriodSeconds": 1,
                    "containers": [{"name": "probe", "image": w.image(w.c.cluster.rollout.image),
                                    "imagePullPolicy": "IfNotPresent", "command": ["/bin/sleep", "3600"]}]}})
    try:
        wait("probe pod Ready", 120, lambda: is_ready(kubectl_json("-n", outsider, "get", "pod", probe)))
        target = server_pods(w.namespace)[0]
        ip = target["status"]["podIP"]
        seen = probe_ports(outsider, probe, "probe", ip, [API_PORT, CLUSTER_PORT])
        if not seen[API_PORT]:
            raise E2EError(f"the API port of {target['metadata']['name']} is closed to {outsider}, which the "
                           "policy allows")
        if seen[CLUSTER_PORT]:
            w.figures["network_policy_enforced"] = False
            log(f"NOT ENFORCED: a pod in {outsider} reached {target['metadata']['name']}:{CLUSTER_PORT}, which the "
                "stack's NetworkPolicy opens to Vault's own pods only. This cluster's CNI (the bridge plugin) "
                "implements no NetworkPolicy; only the object itself is checked here (it is the stack's).")
            return
        peer = next(p["metadata"]["name"] for p in server_pods(w.namespace)
                    if p["metadata"]["name"] != target["metadata"]["name"])
        if not probe_ports(w.namespace, peer, "vault", ip, [CLUSTER_PORT])[CLUSTER_PORT]:
            raise E2EError(f"{peer} cannot reach {target['metadata']['name']}:{CLUSTER_PORT}")
        w.figures["network_policy_enforced"] = True
        log(f"ENFORCED: {outsider} reaches the API port and not the cluster port; {peer} reaches the cluster port")
    finally:
        kubectl("-n", outsider, "delete", "pod", probe, "--ignore-not-found", "--wait=false", check=False)


# --- 8. readiness and disruption ------------------------------------------------------------------------

def services_of(namespace: str, labels: dict[str, str]) -> dict[str, bool]:
    """Services whose selector picks a pod with ``labels``: name -> publishNotReadyAddresses."""
    found = {}
    for svc in kubectl_json("-n", namespace, "get", "services")["items"]:
        selector = svc["spec"].get("selector") or {}
        if selector and all(labels.get(k) == v for k, v in selector.items()):
            found[svc["metadata"]["name"]] = bool(svc["spec"].get("publishNotReadyAddresses"))
    return found


def evict(namespace: str, pod: str, dry_run: bool) -> str:
    body = {"apiVersion": "policy/v1", "kind": "Eviction", "metadata": {"name": pod, "namespace": namespace},
            **({"deleteOptions": {"dryRun": ["All"]}} if dry_run else {})}
    return kubectl("create", "--raw", f"/api/v1/namespaces/{namespace}/pods/{pod}/eviction", "-f", "-",
                   stdin=json.dumps(body), check=False)


def pdb_allowed(namespace: str, name: str) -> int:
    return int(kubectl_json("-n", namespace, "get", "pdb", name).get("status", {}).get("disruptionsAllowed", -1))


def restart_sealed(w: Walk, pod: str) -> float:
    """Delete ``pod``; wait until it runs again, sealed. Seconds from the delete."""
    uid = pod_uid(w.namespace, pod)
    start = time.monotonic()
    kubectl("-n", w.namespace, "delete", "pod", pod, "--wait=false")
    wait(f"{pod} recreated", 180, lambda: pod_uid(w.namespace, pod) not in ("", uid))
    wait(f"{pod} running, sealed", 180, lambda: pod_sealed(w.namespace, pod))
    return time.monotonic() - start


def readiness(w: Walk) -> None:
    from components.model.names import Names

    names = Names.of(w.c)
    active = wait("an active pod", 60, lambda: active_pod(w.namespace))
    standby = next(p["metadata"]["name"] for p in server_pods(w.namespace) if p["metadata"]["name"] != active)
    restart_sealed(w, standby)
    wait(f"{standby} not Ready while sealed", 60,
         lambda: not is_ready(kubectl_json("-n", w.namespace, "get", "pod", standby)))
    time.sleep(12)  # two readiness periods more: still not Ready
    pod = kubectl_json("-n", w.namespace, "get", "pod", standby)
    if is_ready(pod) or not pod_sealed(w.namespace, standby):
        raise E2EError(f"{standby} is Ready or unsealed before `pulumi up`")
    services = services_of(w.namespace, pod["metadata"]["labels"])
    clients = sorted(s for s, unready in services.items() if not unready)
    for service in clients:
        if endpoints(w.namespace, service).get(standby):
            raise E2EError(f"Service {service} sends traffic to the sealed {standby}")
    # The API address: every answer comes from an unsealed pod (a sealed one answers 503).
    answers = [w.vault.call("GET", "sys/health?standbyok=true&perfstandbyok=true", token="")[0] for _ in range(40)]
    if any(a != 200 for a in answers):
        raise E2EError(f"requests through {w.vault.address} reached a sealed pod or failed: {answers}")
    log(f"sealed {standby}: not Ready, in no ready endpoints of {', '.join(clients)} (only "
        f"{', '.join(sorted(s for s, u in services.items() if u))} publish it, to unseal and join it); "
        f"40 of 40 requests through {w.vault.address} answered by unsealed pods")
    wait("PodDisruptionBudget counts the sealed pod out", 60, lambda: pdb_allowed(w.namespace, names.release) == 0)
    victim = active
    uid = pod_uid(w.namespace, victim)
    refused = evict(w.namespace, victim, dry_run=False)
    if "disruption budget" not in refused or pod_uid(w.namespace, victim) != uid:
        raise E2EError(f"evicting {victim} with {standby} sealed was not refused by the budget: {refused}")
    log(f"eviction of {victim} refused: {refused.strip().splitlines()[-1][:160]}")
    w.figures["pdb_blocks_eviction_with_one_sealed"] = True
    took = unseal_with_up(w, f"unseals {standby}")
    wait(f"{standby} Ready", 120, lambda: is_ready(kubectl_json("-n", w.namespace, "get", "pod", standby)))
    wait("PodDisruptionBudget allows one again", 60, lambda: pdb_allowed(w.namespace, names.release) == 1)
    allowed = evict(w.namespace, victim, dry_run=True)
    if "disruption budget" in allowed or "Error" in allowed:
        raise E2EError(f"a dry-run eviction with every pod unsealed was refused: {allowed}")
    figure(w.figures, "readiness_unseal_up_seconds", round(took, 1),
           f"`pulumi up` unsealed {standby} in {took:.0f}s; with all pods unsealed an eviction is allowed (dry run)")


# --- 6. failover ------------------------------------------------------------------------------------------

def leader_address(vault: Vault) -> str:
    """The leader's cluster address (https://<pod>.<internal service>:8201; its API address is a pod IP),
    or "" while none is known."""
    status, body = vault.call("GET", "sys/leader", token="", timeout=2)
    return body.get("leader_cluster_address", "") if status == 200 else ""


def first_write(vault: Vault, path: str, value: str, old_leader: str, limit: float) -> tuple[float, int]:
    """Write until a write is accepted with a leader other than ``old_leader``: (seconds, writes that
    failed before it). The deleted pod drains for a moment and keeps answering as leader meanwhile,
    so a write it accepts says nothing about the failover."""
    start = time.monotonic()
    mount, _, rest = path.partition("/")
    failed = 0
    while time.monotonic() - start < limit:
        leader = leader_address(vault)
        status, _ = vault.call("POST", f"{mount}/data/{rest}", {"data": {"v": value}}, timeout=2)
        if status == 200 and leader and leader != old_leader and leader_address(vault) == leader:
            return time.monotonic() - start, failed
        failed += status != 200
        time.sleep(0.1)
    raise E2EError(f"no write accepted by a new leader within {limit:.0f}s")


def failover_round(w: Walk, n: int, path: str) -> tuple[float, float, float]:
    """Delete the active pod: (seconds to the first write accepted by a new leader, to the pod back
    sealed, of the `pulumi up` that unseals it)."""
    vault = w.vault
    active = wait("one active pod", 120, lambda: active_pod(w.namespace))
    # A standby just unsealed is Ready before it has found the leader to forward to (HTTP 500 "active
    # cluster node not found" for a moment): the round starts once writes go through.
    mount, _, rest = path.partition("/")
    wait("a write accepted before the round", 60,
         lambda: vault.call("POST", f"{mount}/data/{rest}", {"data": {"v": f"before-{n}"}})[0] == 200)
    old_leader = leader_address(vault)
    if not old_leader:
        raise E2EError("sys/leader names no leader before the delete")
    uid = pod_uid(w.namespace, active)
    start = time.monotonic()
    kubectl("-n", w.namespace, "delete", "pod", active, "--wait=false")
    to_write, failed = first_write(vault, path, f"after-{n}", old_leader, 120)
    new = wait("a new active pod", 60, lambda: (a := active_pod(w.namespace)) and a != active and a)
    log(f"round {n}: deleted the active {active}; {new} active, the first write under it accepted "
        f"{to_write:.1f}s after the delete ({failed} writes refused or unanswered before it)")
    wait(f"{active} recreated", 180, lambda: pod_uid(w.namespace, active) not in ("", uid))
    wait(f"{active} running, sealed", 180, lambda: pod_sealed(w.namespace, active))
    back = time.monotonic() - start
    time.sleep(12)  # two readiness periods: a sealed pod stays out
    if is_ready(kubectl_json("-n", w.namespace, "get", "pod", active)):
        raise E2EError(f"{active} is Ready while sealed")
    up = unseal_with_up(w, f"unseals {active}")
    wait(f"{active} Ready once unsealed", 120, lambda: is_ready(kubectl_json("-n", w.namespace, "get", "pod", active)))
    wait(f"{w.c.cluster.replicas} Raft voters after round {n}", 120, lambda: voters(w) == w.c.cluster.replicas)
    return to_write, back, up


def failover(w: Walk) -> None:
    path = f"{w.c.kv.path}/e2e/failover"
    results = [failover_round(w, n, path) for n in range(1, FAILOVER_ROUNDS + 1)]
    rounds, back, ups = ([r[i] for r in results] for i in range(3))
    got = w.vault.ok("GET", f"{w.c.kv.path}/data/e2e/failover")["data"]["data"]["v"]
    if got != f"after-{FAILOVER_ROUNDS}":
        raise E2EError(f"the last accepted write is lost: {got}")
    figure(w.figures, "failover_seconds", {"rounds": [round(r, 2) for r in rounds],
                                           "median": round(statistics.median(rounds), 2), "max": round(max(rounds), 2)},
           f"failover, active pod deleted -> first write accepted by the new leader, {len(rounds)} rounds: median "
           f"{statistics.median(rounds):.1f}s, max {max(rounds):.1f}s ({', '.join(f'{r:.1f}' for r in rounds)})")
    figure(w.figures, "failover_pod_back_sealed_seconds", round(statistics.median(back), 1),
           f"the deleted pod running again, sealed and not Ready: median {statistics.median(back):.0f}s after the "
           f"delete; Ready after the next `pulumi up` (median {statistics.median(ups):.0f}s)")
    w.figures["failover_unseal_up_seconds"] = round(statistics.median(ups), 1)


# --- 7. rolling restart ------------------------------------------------------------------------------------

class Writer:
    """A client writing one new secret after another through the API address."""

    def __init__(self, vault: Vault, prefix: str):
        self.vault, self.prefix = vault, prefix
        self.accepted: list[str] = []
        self.failed: list[tuple[float, str]] = []
        self.longest_gap = 0.0
        # (wall-clock time, pod sys/leader names) before each write: who led when.
        self.leaders: list[tuple[float, str]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._write, daemon=True)

    def __enter__(self) -> Writer:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _write(self) -> None:
        n = 0
        last_ok = time.monotonic()
        mount, _, rest = self.prefix.partition("/")
        while not self._stop.is_set():
            n += 1
            key = f"w{n:05d}"
            self.leaders.append((time.time(), leader_address(self.vault).split("//")[-1].split(".")[0]))
            status, body = self.vault.call("POST", f"{mount}/data/{rest}/{key}", {"data": {"n": str(n)}}, timeout=5)
            now = time.monotonic()
            if status == 200:
                self.accepted.append(key)
                self.longest_gap = max(self.longest_gap, now - last_ok)
                last_ok = now
            else:
                self.failed.append((now, f"{status} {str(body)[:120]}"))
            self._stop.wait(0.1)

    def lost(self) -> list[str]:
        mount, _, rest = self.prefix.partition("/")
        present = set(self.vault.ok("LIST", f"{mount}/metadata/{rest}")["data"]["keys"])
        return [k for k in self.accepted if k not in present]


def parse_time(stamp: str) -> float:
    """An RFC 3339 time from the API server or kubectl (nanoseconds cut to micro): epoch seconds."""
    from datetime import datetime

    head, _, frac = stamp.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(frac or '0')[:6]:0<6}+00:00").timestamp()


def job_times(namespace: str, job: str) -> tuple[float, str]:
    status = kubectl_json("-n", namespace, "get", "job", job)["status"]
    from datetime import datetime

    def parse(s: str) -> datetime:
        return datetime.fromisoformat(s.replace("Z", "+00:00"))

    if not status.get("completionTime"):
        raise E2EError(f"Job {job} did not complete: {status}")
    return (parse(status["completionTime"]) - parse(status["startTime"])).total_seconds(), status["startTime"]


def deployed_log_level(namespace: str, statefulset: str) -> str:
    template = kubectl_json("-n", namespace, "get", "statefulset", statefulset)["spec"]["template"]
    vault = next(c for c in template["spec"]["containers"] if c["name"] == "vault")
    return next((e.get("value", "") for e in vault.get("env", []) if e["name"] == "VAULT_LOG_LEVEL"), "")


def rolling_restart(w: Walk) -> None:
    from tests.e2e.run import PROJECT, write_stack_file

    namespace = w.namespace
    leader = wait("one active pod", 60, lambda: active_pod(namespace))
    before = {p["metadata"]["name"]: p["metadata"]["uid"] for p in server_pods(namespace)}
    old_job = w.engine.outputs().get("rolloutJob")
    cluster = dict(w.engine.config[f"{PROJECT}:cluster"])
    # Away from what the pods run now (an earlier run may have left the other level deployed).
    level = "info" if deployed_log_level(namespace, w.c.cluster.release_name) != "info" else "debug"
    cluster["logLevel"] = level
    configured = w.engine.config
    w.engine.config = {**configured, f"{PROJECT}:cluster": cluster}
    write_stack_file(w.engine.config)
    log(f"cluster.logLevel -> {level}; pulumi up with a client writing throughout")
    with Writer(w.vault, f"{w.c.kv.path}/e2e/rolling-{w.nonce}") as writer:
        start = time.monotonic()
        w.engine.up()
        up_took = time.monotonic() - start
        time.sleep(3)
    job = w.engine.outputs()["rolloutJob"]
    if job == old_job:
        raise E2EError(f"the setting change made no new restart Job ({job})")
    restart_took, _ = job_times(namespace, job)
    log_lines = kubectl("-n", namespace, "logs", f"job/{job}", "--timestamps").splitlines()
    stamped = [line.split(" ", 1) for line in log_lines if " " in line]
    events = [(parse_time(t), line) for t, line in stamped if line.startswith("rollout:")]
    lines = [line for _, line in events]
    order = [line.split()[2] for line in lines if line.startswith("rollout: restarting ")]
    after = {p["metadata"]["name"]: p["metadata"]["uid"] for p in server_pods(namespace)}
    if sorted(order) != sorted(before) or any(before[p] == after[p] for p in before):
        raise E2EError(f"not every pod was restarted once: {order}; job log:\n" + "\n".join(lines))
    # No pod is deleted while it leads: as the writing client saw sys/leader, the pod restarted was not
    # the leader at that moment, unless the Job had just stepped it down.
    stepped: set[str] = set()
    for at, line in events:
        if line.startswith("rollout: stepping "):
            stepped.add(line.split()[2])
        elif line.startswith("rollout: restarting "):
            pod = line.split()[2]
            seen = [who for t, who in writer.leaders if t <= at]
            if seen and seen[-1] == pod and pod not in stepped:
                raise E2EError(f"{pod} was restarted while it led, without a step-down:\n" + "\n".join(lines))
    changes = [b for (_, a), (_, b) in zip(writer.leaders, writer.leaders[1:], strict=False) if a and b and a != b]
    on_their_own = max(0, len(changes) - len(stepped))
    if order[-1] not in stepped and leader not in stepped and not on_their_own:
        raise E2EError(f"the leader {leader} was neither stepped down nor replaced: " + "\n".join(lines))
    lost = writer.lost()
    if lost:
        raise E2EError(f"{len(lost)} accepted writes are lost: {lost[:10]}")
    log("restart order: " + " -> ".join(order) + f"; stepped down: {', '.join(sorted(stepped)) or 'none'}; the "
        f"leader changed {len(changes)} times ({' -> '.join(changes)}), {on_their_own} of them by an election "
        "the Job did not ask for")
    figure(w.figures, "rolling_restart", {
        "job_seconds": round(restart_took, 1), "up_seconds": round(up_took, 1), "pods": len(order),
        "writes_accepted": len(writer.accepted), "writes_failed": len(writer.failed), "writes_lost": len(lost),
        "longest_write_gap_seconds": round(writer.longest_gap, 2), "step_downs": len(stepped),
        "unrequested_elections": on_their_own},
        f"rolling restart of {len(order)} pods: the Job took {restart_took:.0f}s (`pulumi up` {up_took:.0f}s); a "
        f"client writing throughout: {len(writer.accepted)} writes accepted, {len(writer.failed)} failed, "
        f"{len(lost)} lost, longest wait between two accepted writes {writer.longest_gap:.1f}s")
    if writer.failed:
        log("failed writes: " + "; ".join(f"{t - start:.1f}s {why}" for t, why in writer.failed[:5]))
    # Back to the stack's own setting (a second roll), so the stack is the e2e stack again for the
    # steps and runs after this one.
    w.engine.config = configured
    write_stack_file(configured)
    if configured[f"{PROJECT}:cluster"].get("logLevel", "info") != level:
        start = time.monotonic()
        w.engine.up()
        log(f"cluster.logLevel back to the stack's: pulumi up with its rolling restart {time.monotonic() - start:.0f}s")


# --- 5. backups and the restore ----------------------------------------------------------------------------

def backup_restore(w: Walk) -> None:
    restore.walk(w)


# --- the walk ------------------------------------------------------------------------------------------------

STEPS: dict[str, Callable[[Walk], None]] = {
    "injector": injector,
    "external-secrets": external_secrets,
    "database": database,
    "cert-manager": cert_manager,
    "network-policy": network_policy,
    "readiness": readiness,
    "failover": failover,
    "rolling-restart": rolling_restart,
    "backup-restore": backup_restore,
}
# Steps that restart Vault pods: checks still running in the background finish first.
DISRUPTIVE = {"readiness", "failover", "rolling-restart", "backup-restore"}


def run(engine: Any, steps: list[str], times: dict[str, float], figures: dict[str, Any]) -> None:
    from tests.e2e.run import no_changes, step

    w = Walk(engine, figures, times)
    try:
        for name in [s for s in STEPS if s in steps]:
            if name in DISRUPTIVE and w.pending:
                with step("waiting for the background checks", times):
                    w.settle()
            with step(f"walkthrough: {name}", times):
                STEPS[name](w)
        with step("waiting for the background checks", times):
            w.settle()
        with step("pulumi preview --expect-no-changes after the walkthrough", times):
            no_changes(engine)
    finally:
        namespace, _ = injector_app(w).namespace, None
        kubectl("-n", namespace, "delete", "pod", APP_POD, "--ignore-not-found", "--wait=true", check=False,
                timeout=120)
