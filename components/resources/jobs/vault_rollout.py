#!/usr/bin/env python3
"""Leader-aware rolling restart and safe scale-down of the Vault StatefulSet.

The stack runs this in the cluster as a Job (components/render/rollout_job.py) because only there
can it reach every pod directly: the pods by their IP, the Kubernetes API with the Job's service
account token. Standard library only, so it runs in a plain Python image.

    vault_rollout.py restart      after `pulumi up` changed the pod template: restart every pod whose
                                  revision is not the StatefulSet's updateRevision, standbys first
                                  (highest ordinal first), each only once the previous one is back
                                  unsealed, healthy and a voter; then step the active node down and
                                  restart it last
    vault_rollout.py scale-down   before `pulumi up` lowers the replica count: remove the departing
                                  pods from the Raft configuration one at a time (stepping the active
                                  node down first if it is one of them), so the StatefulSet shrinking
                                  never leaves dead voters that could cost the quorum

Both are idempotent: what is already done is skipped, so a run that was interrupted (the Job's pod
killed, a timeout) finishes the work when it runs again. A run stops at the first problem, with at
most one pod down, and exits 1 after one line starting "rollout: ERROR:".

Environment:
  ROLLOUT_NAMESPACE         the Vault namespace
  ROLLOUT_RELEASE           the StatefulSet (and release) name; pods are <release>-<ordinal>
  ROLLOUT_REPLICAS          the replica count the stack wants
  ROLLOUT_POD_TIMEOUT       seconds to wait for one pod to be back (default 600)
  KUBERNETES_API            default https://kubernetes.default.svc
  KUBERNETES_TOKEN_PATH     default: the pod's service account token
  KUBERNETES_CA_PATH        default: the pod's service account CA
  VAULT_CACERT              CA bundle the Vault servers' certificates chain to
  VAULT_TLS_SERVER_NAME     the name to verify on pod N's certificate (default
                            "{pod}.<release>-internal"; "{pod}" is replaced)
  VAULT_TOKEN               a token to use as is; when unset, log in with Kubernetes auth:
  VAULT_K8S_AUTH_PATH, VAULT_K8S_ROLE, VAULT_K8S_JWT_PATH
  VAULT_UNSEAL_KEYS_PATH    shamir (dev only): a file with unseal keys, one per line, to unseal the
                            pods this run restarts
"""

from __future__ import annotations

import http.client
import json
import os
import socket
import ssl
import sys
import time
import urllib.parse
from dataclasses import dataclass, field
from typing import Any

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
HEALTH = "sys/health?standbyok=true&perfstandbyok=true&sealedcode=200&uninitcode=200"
POLL_SECONDS = 1.0


class RolloutError(RuntimeError):
    """A reason to stop; its text is the one ERROR line."""


class UnverifiedError(RuntimeError):
    """The pod's certificate does not chain to the CA this run trusts (the CA changed and the pod
    still serves the old one)."""


def log(message: str) -> None:
    print(f"rollout: {message}", file=sys.stderr, flush=True)


# --- HTTP ------------------------------------------------------------------------------------------

class _NamedHTTPSConnection(http.client.HTTPSConnection):
    """Connects to an address but verifies the certificate against another name (a pod IP carries no
    name of its own; its certificate names the pod)."""

    def __init__(self, host: str, port: int, server_name: str, context: ssl.SSLContext, timeout: float):
        super().__init__(host, port, timeout=timeout, context=context)
        self._server_name = server_name
        self._tls = context

    def connect(self) -> None:
        raw = socket.create_connection((self.host, self.port), self.timeout)
        self.sock = self._tls.wrap_socket(raw, server_hostname=self._server_name)


def _request(url: str, method: str = "GET", body: Any = None, headers: dict[str, str] | None = None,
             context: ssl.SSLContext | None = None, server_name: str | None = None,
             timeout: float = 10.0) -> tuple[int, Any]:
    parts = urllib.parse.urlsplit(url)
    port = parts.port or (443 if parts.scheme == "https" else 80)
    host = parts.hostname or ""
    if parts.scheme == "https":
        assert context is not None
        conn: http.client.HTTPConnection = _NamedHTTPSConnection(host, port, server_name or host, context, timeout)
    else:
        conn = http.client.HTTPConnection(host, port, timeout=timeout)
    data = json.dumps(body).encode() if body is not None else None
    all_headers = {"Accept": "application/json", **(headers or {})}
    if data is not None:
        all_headers["Content-Type"] = "application/json"
    path = parts.path + (f"?{parts.query}" if parts.query else "")
    try:
        conn.request(method, path, body=data, headers=all_headers)
        response = conn.getresponse()
        raw = response.read()
    except ssl.SSLCertVerificationError as exc:
        raise UnverifiedError(str(exc)) from None
    finally:
        conn.close()
    try:
        payload = json.loads(raw) if raw else {}
    except ValueError:
        payload = {"errors": [raw.decode(errors="replace")[:200]]}
    return response.status, payload


def go_duration_seconds(text: str) -> float:
    """Seconds in a Go duration as Vault prints them ("2.85s", "1m3s", "850ms", "0s")."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 0.001, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}
    total, number = 0.0, ""
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isdigit() or ch == ".":
            number += ch
            i += 1
            continue
        unit = text[i:i + 2] if text[i:i + 2] in units else ch
        if unit not in units or not number:
            raise ValueError(f"not a duration: {text!r}")
        total += float(number) * units[unit]
        number = ""
        i += len(unit)
    if number:
        raise ValueError(f"not a duration: {text!r}")
    return total


def _errors(payload: Any) -> str:
    if isinstance(payload, dict):
        if payload.get("errors"):
            return "; ".join(str(e) for e in payload["errors"])
        if payload.get("message"):
            return str(payload["message"])
    return str(payload)[:200]


# --- the Kubernetes API ----------------------------------------------------------------------------

class Kubernetes:
    def __init__(self, api: str, token_path: str, ca_path: str | None, namespace: str):
        self.api = api.rstrip("/")
        self.token_path = token_path
        self.context = ssl.create_default_context(cafile=ca_path) if api.startswith("https://") else None
        self.namespace = namespace

    def _call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        with open(self.token_path) as f:  # re-read: projected tokens are rotated
            token = f.read().strip()
        return _request(self.api + path, method, body, {"Authorization": f"Bearer {token}"}, self.context,
                        timeout=30)

    def statefulset(self, name: str) -> dict[str, Any] | None:
        status, payload = self._call("GET", f"/apis/apps/v1/namespaces/{self.namespace}/statefulsets/{name}")
        if status == 404:
            return None
        if status != 200:
            raise RolloutError(f"cannot read StatefulSet {name}: HTTP {status}: {_errors(payload)}")
        return payload

    def pod(self, name: str) -> dict[str, Any] | None:
        status, payload = self._call("GET", f"/api/v1/namespaces/{self.namespace}/pods/{name}")
        if status == 404:
            return None
        if status != 200:
            raise RolloutError(f"cannot read pod {name}: HTTP {status}: {_errors(payload)}")
        return payload

    def delete_pod(self, name: str, uid: str) -> None:
        # The precondition makes a repeated delete harmless: it never takes down the replacement.
        status, payload = self._call("DELETE", f"/api/v1/namespaces/{self.namespace}/pods/{name}",
                                     {"kind": "DeleteOptions", "apiVersion": "v1", "preconditions": {"uid": uid}})
        if status not in (200, 202, 404, 409):
            raise RolloutError(f"cannot delete pod {name}: HTTP {status}: {_errors(payload)}")


# --- what one pod looks like -----------------------------------------------------------------------

@dataclass
class Pod:
    name: str
    ordinal: int
    exists: bool = False
    uid: str = ""
    revision: str = ""
    ip: str = ""
    port: int = 8200
    running: bool = False
    ready: bool = False
    labels: dict[str, str] = field(default_factory=dict)
    deleting: bool = False

    @classmethod
    def of(cls, name: str, ordinal: int, manifest: dict[str, Any] | None) -> Pod:
        if manifest is None:
            return cls(name, ordinal)
        meta, spec, status = manifest.get("metadata", {}), manifest.get("spec", {}), manifest.get("status", {})
        port = 8200
        for container in spec.get("containers", []):
            for p in container.get("ports", []):
                if p.get("name") in ("https", "http"):
                    port = int(p["containerPort"])
        conditions = {c.get("type"): c.get("status") for c in status.get("conditions", [])}
        return cls(name, ordinal, exists=True, uid=meta.get("uid", ""),
                   revision=meta.get("labels", {}).get("controller-revision-hash", ""),
                   ip=status.get("podIP", ""), port=port, running=status.get("phase") == "Running",
                   ready=conditions.get("Ready") == "True", labels=dict(meta.get("labels", {})),
                   deleting=bool(meta.get("deletionTimestamp")))


@dataclass
class Health:
    reachable: bool
    verified: bool = True
    initialized: bool = False
    sealed: bool = True
    standby: bool = True
    detail: str = ""

    @property
    def serving(self) -> bool:
        return self.reachable and self.verified and self.initialized and not self.sealed

    @property
    def active(self) -> bool:
        return self.serving and not self.standby


# --- the roll --------------------------------------------------------------------------------------

@dataclass
class Settings:
    namespace: str
    release: str
    replicas: int
    pod_timeout: float = 600.0
    kubernetes_api: str = "https://kubernetes.default.svc"
    kubernetes_token_path: str = f"{SA_DIR}/token"
    kubernetes_ca_path: str | None = f"{SA_DIR}/ca.crt"
    vault_ca_path: str = ""
    tls_server_name: str = ""
    vault_token: str = ""
    auth_path: str = "kubernetes"
    auth_role: str = "raft-rollout"
    jwt_path: str = f"{SA_DIR}/token"
    unseal_keys_path: str = ""

    @classmethod
    def from_env(cls, env: dict[str, str]) -> Settings:
        def need(name: str) -> str:
            value = env.get(name, "")
            if not value:
                raise RolloutError(f"{name} is not set")
            return value

        try:
            replicas = int(need("ROLLOUT_REPLICAS"))
            timeout = float(env.get("ROLLOUT_POD_TIMEOUT") or 600)
        except ValueError as exc:
            raise RolloutError(f"ROLLOUT_REPLICAS and ROLLOUT_POD_TIMEOUT must be numbers ({exc})") from None
        release = need("ROLLOUT_RELEASE")
        return cls(
            namespace=need("ROLLOUT_NAMESPACE"), release=release, replicas=replicas, pod_timeout=timeout,
            kubernetes_api=env.get("KUBERNETES_API") or "https://kubernetes.default.svc",
            kubernetes_token_path=env.get("KUBERNETES_TOKEN_PATH") or f"{SA_DIR}/token",
            kubernetes_ca_path=env.get("KUBERNETES_CA_PATH") or f"{SA_DIR}/ca.crt",
            vault_ca_path=need("VAULT_CACERT"),
            tls_server_name=env.get("VAULT_TLS_SERVER_NAME") or "{pod}." + f"{release}-internal",
            vault_token=env.get("VAULT_TOKEN", ""),
            auth_path=env.get("VAULT_K8S_AUTH_PATH") or "kubernetes",
            auth_role=env.get("VAULT_K8S_ROLE") or "raft-rollout",
            jwt_path=env.get("VAULT_K8S_JWT_PATH") or f"{SA_DIR}/token",
            unseal_keys_path=env.get("VAULT_UNSEAL_KEYS_PATH", ""),
        )


class Rollout:
    def __init__(self, settings: Settings, kube: Kubernetes | None = None):
        self.s = settings
        self.kube = kube or Kubernetes(settings.kubernetes_api, settings.kubernetes_token_path,
                                       settings.kubernetes_ca_path, settings.namespace)
        self.tls = ssl.create_default_context(cafile=settings.vault_ca_path)
        self._token = settings.vault_token

    # -- Vault --------------------------------------------------------------------------------

    def _vault(self, pod: Pod, method: str, path: str, body: Any = None, token: str | None = None,
               timeout: float = 10.0) -> tuple[int, Any]:
        if not pod.ip:
            raise ConnectionError(f"{pod.name} has no IP yet")
        headers = {"X-Vault-Token": token} if token else {}
        return _request(f"https://{pod.ip}:{pod.port}/v1/{path}", method, body, headers, self.tls,
                        self.s.tls_server_name.replace("{pod}", pod.name), timeout=timeout)

    def health(self, pod: Pod) -> Health:
        try:
            status, payload = self._vault(pod, "GET", HEALTH, timeout=5)
        except UnverifiedError as exc:
            return Health(reachable=True, verified=False, detail=f"certificate not trusted ({exc})")
        except (OSError, http.client.HTTPException) as exc:
            return Health(reachable=False, detail=f"{type(exc).__name__}: {exc}")
        if status != 200 or not isinstance(payload, dict):
            return Health(reachable=False, detail=f"HTTP {status}: {_errors(payload)}")
        return Health(reachable=True, initialized=bool(payload.get("initialized")),
                      sealed=bool(payload.get("sealed")), standby=bool(payload.get("standby")))

    def _serving_pods(self, pods: list[Pod]) -> list[Pod]:
        return [p for p in pods if p.exists and not p.deleting and self.health(p).serving]

    def token(self, pods: list[Pod]) -> str:
        if self.s.vault_token:
            return self.s.vault_token
        if self._token:
            status, _ = self._through_any(pods, "GET", "auth/token/lookup-self", token=self._token)
            if status == 200:
                return self._token
        with open(self.s.jwt_path) as f:
            jwt = f.read().strip()
        status, payload = self._through_any(pods, "POST", f"auth/{self.s.auth_path}/login",
                                            {"role": self.s.auth_role, "jwt": jwt})
        if status != 200:
            raise RolloutError(f"Kubernetes login to Vault (auth/{self.s.auth_path}, role {self.s.auth_role}) "
                               f"failed: HTTP {status}: {_errors(payload)}")
        self._token = payload["auth"]["client_token"]
        return self._token

    def _through_any(self, pods: list[Pod], method: str, path: str, body: Any = None,
                     token: str | None = None) -> tuple[int, Any]:
        """Call through the first pod that serves and whose certificate this run trusts (standbys
        forward to the active node)."""
        last = "no pod serves"
        for pod in self._serving_pods(pods):
            try:
                return self._vault(pod, method, path, body, token)
            except (UnverifiedError, OSError, http.client.HTTPException) as exc:
                last = f"{pod.name}: {exc}"
        raise ConnectionError(last)

    # -- Kubernetes ---------------------------------------------------------------------------

    def pods(self, count: int | None = None, only: set[str] | None = None) -> list[Pod]:
        """Pods 0..count-1 (default: the replicas wanted), or only those of them named in ``only``."""
        n = self.s.replicas if count is None else count
        names = [(i, f"{self.s.release}-{i}") for i in range(n)]
        return [Pod.of(name, i, self.kube.pod(name)) for i, name in names if only is None or name in only]

    def statefulset(self) -> dict[str, Any]:
        """The StatefulSet once its controller has seen the latest spec (so updateRevision is current)."""
        deadline = time.monotonic() + 120
        for _ in range(240):
            sts = self.kube.statefulset(self.s.release)
            if sts is None:
                raise RolloutError(f"StatefulSet {self.s.release} does not exist in {self.s.namespace}")
            if sts.get("status", {}).get("observedGeneration", 0) >= sts.get("metadata", {}).get("generation", 0):
                return sts
            if time.monotonic() > deadline:
                break
            time.sleep(0.5)
        raise RolloutError(f"the StatefulSet controller has not observed {self.s.release}'s latest spec in 120s")

    # -- the cluster's state ------------------------------------------------------------------

    def problems(self, pods: list[Pod], restarted: dict[str, float] | None = None) -> list[str]:
        """Why the cluster is not fit to lose a pod right now; empty when every pod serves and every
        one of them is a healthy voter. ``restarted`` (pod -> when it was deleted): those must also
        have been in contact with the leader since, so autopilot's view of them is not the old
        process's."""
        found: list[str] = []
        healths = {}
        for pod in pods:
            if not pod.exists or pod.deleting:
                found.append(f"{pod.name} does not run")
                continue
            health = self.health(pod)
            healths[pod.name] = health
            if not health.reachable:
                found.append(f"{pod.name} does not answer ({health.detail})")
            elif not health.verified:
                # The CA changed: only what Kubernetes sees can vouch for this pod until it restarts.
                if not pod.ready or pod.labels.get("vault-sealed") == "true":
                    found.append(f"{pod.name} is not ready")
            elif not health.initialized:
                found.append(f"{pod.name} is not initialized")
            elif health.sealed:
                found.append(f"{pod.name} is sealed")
        if found:
            return found
        if not any(h.verified for h in healths.values()):
            # Nothing can be asked about Raft; every pod is Ready and unsealed as far as Kubernetes knows.
            return []
        try:
            token = self.token(pods)
            status, state = self._through_any(pods, "GET", "sys/storage/raft/autopilot/state", token=token)
        except (ConnectionError, RolloutError) as exc:
            return [f"cannot read the autopilot state: {exc}"]
        if status != 200:
            return [f"cannot read the autopilot state: HTTP {status}: {_errors(state)}"]
        data = state.get("data", state)
        servers = data.get("servers", {})
        for pod in pods:
            server = servers.get(pod.name)
            if server is None:
                found.append(f"{pod.name} is not in the Raft configuration")
            elif server.get("status") not in ("leader", "voter"):
                found.append(f"{pod.name} is not a voter yet ({server.get('status')})")
            elif not server.get("healthy"):
                found.append(f"{pod.name} is not healthy in autopilot's view")
            elif restarted and pod.name in restarted:
                since = time.monotonic() - restarted[pod.name]
                try:
                    contact = go_duration_seconds(str(server.get("last_contact") or "0s"))
                except ValueError:
                    contact = since
                if contact >= since:
                    found.append(f"{pod.name} has not been in contact with the leader since its restart")
        if not found and not data.get("healthy"):
            found.append("autopilot reports the cluster unhealthy")
        return found

    def wait_fit(self, pods_count: int | None = None, what: str = "the cluster to be healthy",
                 restarted: dict[str, float] | None = None, only: set[str] | None = None) -> list[Pod]:
        deadline = time.monotonic() + self.s.pod_timeout
        last: list[str] = []
        for _ in range(int(self.s.pod_timeout / POLL_SECONDS) + 5):
            pods = self.pods(pods_count, only)
            self._unseal_restarted(pods)
            last = self.problems(pods, restarted)
            if not last:
                return pods
            if time.monotonic() > deadline:
                break
            time.sleep(POLL_SECONDS)
        raise RolloutError(f"gave up waiting for {what} after {int(self.s.pod_timeout)}s: {'; '.join(last)}")

    def _unseal_restarted(self, pods: list[Pod]) -> None:
        """Shamir (dev): unseal pods that came back sealed, with the keys the stack gave this Job."""
        if not self.s.unseal_keys_path:
            return
        for pod in pods:
            if not pod.exists or pod.deleting:
                continue
            health = self.health(pod)
            if not (health.reachable and health.verified and health.initialized and health.sealed):
                continue
            with open(self.s.unseal_keys_path) as f:
                keys = [line.strip() for line in f if line.strip()]
            self._vault(pod, "PUT", "sys/unseal", {"reset": True})
            for key in keys:
                status, answer = self._vault(pod, "PUT", "sys/unseal", {"key": key})
                if status != 200:
                    raise RolloutError(f"unsealing {pod.name} failed: HTTP {status}: {_errors(answer)}")
                if not answer.get("sealed", True):
                    log(f"unsealed {pod.name}")
                    break

    def active(self, pods: list[Pod]) -> Pod | None:
        for pod in pods:
            if pod.exists and self.health(pod).active:
                return pod
        # The CA changed and no pod can be asked: service registration's label says who leads.
        labelled = [p for p in pods if p.labels.get("vault-active") == "true"]
        return labelled[0] if len(labelled) == 1 else None

    def step_down(self, pod: Pod, pods: list[Pod]) -> None:
        log(f"stepping {pod.name} down as the active node")
        token = self.token(pods)
        try:
            status, payload = self._vault(pod, "PUT", "sys/step-down", token=token)
        except UnverifiedError:
            status, payload = self._through_any(pods, "PUT", "sys/step-down", token=token)
        if status not in (200, 204):
            raise RolloutError(f"step-down of {pod.name} failed: HTTP {status}: {_errors(payload)}")
        deadline = time.monotonic() + self.s.pod_timeout
        for _ in range(int(self.s.pod_timeout / POLL_SECONDS) + 5):
            now = self.pods()
            leader = self.active(now)
            if leader is not None and leader.name != pod.name:
                log(f"{leader.name} is the active node now")
                return
            if time.monotonic() > deadline:
                break
            time.sleep(POLL_SECONDS)
        raise RolloutError(f"no other node became active within {int(self.s.pod_timeout)}s of {pod.name}'s "
                           "step-down")

    def restart_pod(self, pod: Pod, target: str) -> None:
        log(f"restarting {pod.name} (revision {pod.revision or '?'} -> {target})")
        deleted_at = time.monotonic()
        self.kube.delete_pod(pod.name, pod.uid)
        deadline = time.monotonic() + self.s.pod_timeout
        for _ in range(int(self.s.pod_timeout / POLL_SECONDS) + 5):
            now = Pod.of(pod.name, pod.ordinal, self.kube.pod(pod.name))
            if now.exists and now.uid != pod.uid and not now.deleting:
                break
            if time.monotonic() > deadline:
                raise RolloutError(f"{pod.name} was not recreated within {int(self.s.pod_timeout)}s")
            time.sleep(POLL_SECONDS)
        self.wait_fit(what=f"{pod.name} to be back unsealed, healthy and a voter", restarted={pod.name: deleted_at})
        log(f"{pod.name} is back: unsealed, healthy and a voter")

    # -- the two commands ---------------------------------------------------------------------

    def restart(self) -> int:
        sts = self.statefulset()
        target = sts.get("status", {}).get("updateRevision", "")
        if not target:
            raise RolloutError(f"StatefulSet {self.s.release} reports no updateRevision")
        # Each pass restarts at most one pod; a pod can need it only once.
        for restarted in range(self.s.replicas + 2):
            pods = self.wait_fit(what="every pod to be unsealed, healthy and a voter before the next restart")
            stale = [p for p in pods if p.revision != target]
            if not stale:
                log(f"done: all {len(pods)} pods run revision {target} ({restarted} restarted by this run)")
                return 0
            leader = self.active(pods)
            for _ in range(30):  # an election may be under way: give it half a minute
                if leader is not None:
                    break
                time.sleep(POLL_SECONDS)
                pods = self.pods()
                leader = self.active(pods)
            if leader is None:
                raise RolloutError("no active node: nothing is restarted without one")
            standbys = sorted((p for p in stale if p.name != leader.name), key=lambda p: -p.ordinal)
            if standbys:
                victim = standbys[0]
            else:
                victim = leader
                if len(pods) > 1:
                    self.step_down(leader, pods)
                else:
                    log(f"{leader.name} is the only server: Vault is unavailable until it is back")
                victim = Pod.of(victim.name, victim.ordinal, self.kube.pod(victim.name))
            self.restart_pod(victim, target)
        raise RolloutError("pods still run an old revision after restarting each once; is something else "
                           "changing the StatefulSet?")

    def members(self, pods: list[Pod]) -> dict[str, dict[str, Any]]:
        token = self.token(pods)
        status, config = self._through_any(pods, "GET", "sys/storage/raft/configuration", token=token)
        if status != 200:
            raise RolloutError(f"cannot read the Raft configuration: HTTP {status}: {_errors(config)}")
        return {s.get("node_id"): s for s in config.get("data", {}).get("config", {}).get("servers", [])}

    def scale_down(self) -> int:
        sts = self.kube.statefulset(self.s.release)
        if sts is None:
            log(f"StatefulSet {self.s.release} does not exist yet: nothing to remove")
            return 0
        current = int(sts.get("spec", {}).get("replicas", 0))
        if current <= self.s.replicas:
            log(f"{current} replicas now, {self.s.replicas} wanted: no server leaves")
            return 0
        leaving = [f"{self.s.release}-{i}" for i in range(current - 1, self.s.replicas - 1, -1)]
        log(f"{current} replicas now, {self.s.replicas} wanted: removing {', '.join(leaving)} from Raft first")
        removed = 0
        for name in leaving:
            members = self.members(self.pods(current))
            if name not in members:
                log(f"{name} is not a Raft member any more")
                continue
            # Every member must be a healthy voter before one leaves (pods already removed do not count).
            pods = self.wait_fit(current, what=f"every member to be a healthy voter before {name} leaves",
                                 only=set(members))
            if members[name].get("leader"):
                self.step_down(next(p for p in pods if p.name == name), pods)
                pods = self.pods(current, set(members))
            status, payload = self._through_any(pods, "POST", "sys/storage/raft/remove-peer", {"server_id": name},
                                                token=self.token(pods))
            if status not in (200, 204):
                raise RolloutError(f"removing {name} from Raft failed: HTTP {status}: {_errors(payload)}")
            log(f"removed {name} from the Raft configuration")
            removed += 1
        # The servers that stay must still be healthy voters before the StatefulSet shrinks.
        self.wait_fit(what="the remaining servers to be healthy voters")
        log(f"done: {removed} server(s) removed from Raft now; the StatefulSet may shrink to {self.s.replicas}")
        return 0


def main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[1] not in ("restart", "scale-down"):
        print("usage: vault_rollout.py restart | scale-down", file=sys.stderr)
        return 2
    try:
        rollout = Rollout(Settings.from_env(dict(os.environ)))
        return rollout.restart() if argv[1] == "restart" else rollout.scale_down()
    except RolloutError as exc:
        log(f"ERROR: {exc}")
        return 1
    except (OSError, http.client.HTTPException) as exc:
        log(f"ERROR: {type(exc).__name__}: {exc}")
        return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
