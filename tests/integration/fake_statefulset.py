"""The part of the Kubernetes API the rolling restart uses, on 127.0.0.1, backed by real server
processes instead of pods: a StatefulSet with an update revision, its pods, and deleting a pod,
which (as the StatefulSet controller and the kubelet would) stops the process, gives it the pod
template of the update revision and starts it again.

It plays the kubelet's and service registration's parts too: a pod is Ready when the readiness
probe's path answers 2xx, and carries the ``vault-active`` and ``vault-sealed`` labels Vault's
Kubernetes service registration sets. Everything it did is in ``events``.
"""

from __future__ import annotations

import http.server
import json
import threading
import time
import uuid
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import requests

from components.render.helm_values import READINESS_PATH
from tests.integration import servers
from tests.integration.raft_cluster import RaftCluster

# What a new revision does to a node before it starts again (e.g. write another config or certificate).
Template = Callable[[int, servers.VaultProcess], None]


@dataclass
class Event:
    at: float
    what: str
    pod: str
    detail: dict[str, Any] = field(default_factory=dict)


class FakeStatefulSet:
    def __init__(self, cluster: RaftCluster, *, namespace: str = "vault", token: str = "fake-rollout-sa-token",  # noqa: S107
                 restart_delay: float = 0.5):
        self.cluster = cluster
        self.namespace = namespace
        self.release = cluster.names.release
        self.token = token
        self.restart_delay = restart_delay
        self.generation = 1
        self.observed_generation = 1
        self.update_revision = f"{self.release}-rev1"
        self.templates: dict[str, Template] = {}
        self.revision = {node.name: self.update_revision for node in cluster.nodes}
        self.uid = {node.name: str(uuid.uuid4()) for node in cluster.nodes}
        # A deleted pod: terminating (process stopping), then gone, then recreated.
        self.terminating: set[str] = set()
        self.gone: set[str] = set()
        self.events: list[Event] = []
        self.lock = threading.Lock()
        self.workers: list[threading.Thread] = []
        self.requests_seen = 0
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def _reply(self, status: int, body: Any) -> None:
                out = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def _authorized(self) -> bool:
                if self.headers.get("Authorization") != f"Bearer {fake.token}":
                    self._reply(401, {"kind": "Status", "message": "Unauthorized", "code": 401})
                    return False
                return True

            def do_GET(self) -> None:
                fake.requests_seen += 1
                if not self._authorized():
                    return
                status, body = fake.get(self.path)
                self._reply(status, body)

            def do_DELETE(self) -> None:
                fake.requests_seen += 1
                if not self._authorized():
                    return
                length = int(self.headers.get("Content-Length", "0"))
                options = json.loads(self.rfile.read(length) or b"{}")
                status, body = fake.delete(self.path, options)
                self._reply(status, body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    # -- what the test does ---------------------------------------------------------------------

    def roll_out(self, revision: str, template: Template) -> None:
        """A new pod template, as `pulumi up` changing the release would make the StatefulSet have."""
        with self.lock:
            self.templates[revision] = template
            self.update_revision = revision
            self.generation += 1
            self.observed_generation = self.generation

    def deletions(self) -> list[Event]:
        return [e for e in self.events if e.what == "delete"]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
        for worker in self.workers:
            worker.join(timeout=120)

    # -- the API --------------------------------------------------------------------------------

    def _node(self, name: str) -> tuple[int, servers.VaultProcess] | None:
        for i, node in enumerate(self.cluster.nodes):
            if node.name == name:
                return i, node
        return None

    def get(self, path: str) -> tuple[int, Any]:
        base = f"/apis/apps/v1/namespaces/{self.namespace}/statefulsets/"
        if path == base + self.release:
            return 200, self.statefulset()
        pods = f"/api/v1/namespaces/{self.namespace}/pods/"
        if path.startswith(pods):
            name = path[len(pods):]
            found = self._node(name)
            if found is None or name in self.gone:
                return 404, {"kind": "Status", "reason": "NotFound", "code": 404}
            return 200, self.pod(*found)
        return 404, {"kind": "Status", "reason": "NotFound", "code": 404}

    def statefulset(self) -> dict[str, Any]:
        with self.lock:
            return {"apiVersion": "apps/v1", "kind": "StatefulSet",
                    "metadata": {"name": self.release, "namespace": self.namespace, "generation": self.generation},
                    "spec": {"replicas": len(self.cluster.nodes)},
                    "status": {"observedGeneration": self.observed_generation,
                               "updateRevision": self.update_revision,
                               "currentRevision": min(self.revision.values())}}

    def pod(self, i: int, node: servers.VaultProcess) -> dict[str, Any]:
        labels = {"app.kubernetes.io/name": "vault", "component": "server",
                  "controller-revision-hash": self.revision[node.name]}
        ready = False
        running = node.is_running()
        if running:
            labels.update(self._registration_labels(node))
            answer = _unverified_get(node.api_addr + READINESS_PATH)
            ready = answer is not None and 200 <= answer.status_code < 400
        meta: dict[str, Any] = {"name": node.name, "namespace": self.namespace, "uid": self.uid[node.name],
                                "labels": labels}
        if node.name in self.terminating:
            meta["deletionTimestamp"] = "2030-01-01T00:00:00Z"
        api_port = int(node.api_addr.rsplit(":", 1)[1])
        return {"apiVersion": "v1", "kind": "Pod", "metadata": meta,
                "spec": {"containers": [{"name": "vault", "ports": [
                    {"name": "https", "containerPort": api_port}, {"name": "https-internal", "containerPort": 8201}]}]},
                "status": {"phase": "Running" if running else "Pending", "podIP": "127.0.0.1" if running else "",
                           "conditions": [{"type": "Ready", "status": "True" if ready else "False"}]}}

    def _registration_labels(self, node: servers.VaultProcess) -> dict[str, str]:
        answer = _unverified_get(node.api_addr + "/v1/sys/health?standbyok=true&sealedcode=200&uninitcode=200")
        try:
            health = answer.json() if answer is not None else None
        except ValueError:
            health = None
        if not isinstance(health, dict):
            return {}
        return {"vault-initialized": str(bool(health.get("initialized"))).lower(),
                "vault-sealed": str(bool(health.get("sealed"))).lower(),
                "vault-active": str(not health.get("standby") and not health.get("sealed")).lower()}

    def delete(self, path: str, options: dict[str, Any]) -> tuple[int, Any]:
        pods = f"/api/v1/namespaces/{self.namespace}/pods/"
        name = path[len(pods):] if path.startswith(pods) else ""
        found = self._node(name)
        if found is None or name in self.gone:
            return 404, {"kind": "Status", "reason": "NotFound", "code": 404}
        wanted = options.get("preconditions", {}).get("uid")
        with self.lock:
            if wanted and wanted != self.uid[name]:
                return 409, {"kind": "Status", "reason": "Conflict", "code": 409,
                             "message": "Precondition failed: UID in precondition does not match"}
            if name in self.terminating:
                return 200, {"kind": "Status", "status": "Success"}
            self.terminating.add(name)
            self.events.append(Event(time.monotonic(), "delete", name, self._snapshot()))
        worker = threading.Thread(target=self._recreate, args=found, daemon=True)
        self.workers.append(worker)
        worker.start()
        return 200, {"kind": "Status", "status": "Success"}

    def _snapshot(self) -> dict[str, Any]:
        """Each node's state as Vault reports it, at the moment of a delete."""
        state = {}
        for node in self.cluster.nodes:
            try:
                health = servers.health(node.api_addr, ca=self.cluster.tls.ca_cert, timeout=2) \
                    if node.is_running() else {}
            except Exception:  # a node that does not answer is recorded as such
                health = {}
            state[node.name] = {"running": node.is_running(), "sealed": health.get("sealed"),
                                "standby": health.get("standby"), "revision": self.revision[node.name]}
        return state

    def _recreate(self, i: int, node: servers.VaultProcess) -> None:
        # The kubelet sends SIGTERM and waits for the grace period; the controller then makes a new pod
        # from the update revision's template.
        node.stop(timeout=30)
        with self.lock:
            self.terminating.discard(node.name)
            self.gone.add(node.name)
            revision = self.update_revision
            template = self.templates.get(revision)
        time.sleep(self.restart_delay)
        if template is not None:
            template(i, node)
        node.start()
        with self.lock:
            self.revision[node.name] = revision
            self.uid[node.name] = str(uuid.uuid4())
            self.gone.discard(node.name)
            self.events.append(Event(time.monotonic(), "recreated", node.name, {"revision": revision}))


def _unverified_get(url: str) -> requests.Response | None:
    """What the kubelet's probes and Vault's own service registration see: the pod's answer, whatever
    certificate it presents."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return requests.get(url, verify=False, timeout=2)  # noqa: S501 - probes do not verify either
        except requests.RequestException:
            return None
