"""What the rolling restart tests share: a cluster whose Vault is set up as the stack sets it up for
the restart Job (its policy, its Kubernetes auth role), the Job's environment, and observers that run
beside a roll: a writer and a quorum monitor."""

from __future__ import annotations

import os
import pathlib
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from components.render import policies as pol
from components.render.rollout_job import RolloutNames
from components.render.vault_objects import ROLLOUT_TOKEN_MAX_TTL_SECONDS as TOKEN_MAX_TTL_SECONDS
from components.render.vault_objects import ROLLOUT_TOKEN_TTL_SECONDS as TOKEN_TTL_SECONDS
from tests.integration import servers
from tests.integration.bootstrap_steps import init_and_wait
from tests.integration.fake_kubernetes import FakeKubernetes
from tests.integration.fake_statefulset import FakeStatefulSet
from tests.integration.raft_cluster import RaftCluster

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "scripts" / "vault_rollout.py"
AUDIENCE = "vault"


def init(cluster: RaftCluster) -> str:
    outs, ready = init_and_wait({
        "address": cluster.nodes[0].api_addr, "ca_cert_pem": pathlib.Path(cluster.tls.ca_cert).read_text(),
        "mode": "auto", "shares": 1, "threshold": 1, "pgp_keys": [], "root_token_pgp_key": "",
        "unseal_addresses": [], "expected_peers": len(cluster.nodes), "timeout_seconds": 120,
        "existing_token": None})
    assert ready["status"] == "ready", ready["status"]
    return outs["root_token"]


def root_api(cluster: RaftCluster, token: str):
    def call(method: str, path: str, **kw):
        return servers.api(method, cluster.leader().api_addr, path, token=token, ca=cluster.tls.ca_cert, **kw)
    return call


def set_up_rollout_login(cluster: RaftCluster, token: str, fake_kube: FakeKubernetes, workdir: pathlib.Path) -> str:
    """The policy and role the stack gives the restart Job, and the Job's projected token; returns the
    token file's path."""
    call = root_api(cluster, token)
    call("PUT", f"sys/policies/acl/{pol.ROLLOUT_POLICY}", json={"policy": pol.render(pol.rollout_policy())})
    call("POST", "sys/auth/kubernetes", json={"type": "kubernetes"})
    call("POST", "auth/kubernetes/config", json=fake_kube.auth_config())
    rn = RolloutNames.of(cluster.names.release)
    call("POST", f"auth/kubernetes/role/{rn.vault_role}", json={
        "bound_service_account_names": [rn.service_account], "bound_service_account_namespaces": ["vault"],
        "token_policies": [rn.vault_role], "token_no_default_policy": True, "token_ttl": TOKEN_TTL_SECONDS,
        "token_max_ttl": TOKEN_MAX_TTL_SECONDS, "audience": AUDIENCE})
    jwt = workdir / "vault-token"
    jwt.write_text(fake_kube.token("vault", rn.service_account, audiences=[AUDIENCE]))
    return str(jwt)


def job_env(cluster: RaftCluster, fake: FakeStatefulSet, workdir: pathlib.Path, jwt_path: str, *,
            replicas: int | None = None, ca: str | None = None, pod_timeout: int = 120) -> dict[str, str]:
    """What the Job's pod gets from the manifest (components/render/rollout_job.py), pointed at the fakes."""
    sa_token = workdir / "kube-sa-token"
    sa_token.write_text(fake.token)
    return {
        "PATH": os.environ.get("PATH", ""),
        "HOME": str(workdir),
        "PYTHONDONTWRITEBYTECODE": "1",
        "ROLLOUT_NAMESPACE": "vault", "ROLLOUT_RELEASE": cluster.names.release,
        "ROLLOUT_REPLICAS": str(replicas if replicas is not None else len(cluster.nodes)),
        "ROLLOUT_POD_TIMEOUT": str(pod_timeout),
        "KUBERNETES_API": fake.url, "KUBERNETES_TOKEN_PATH": str(sa_token),
        "VAULT_CACERT": ca or cluster.tls.ca_cert,
        "VAULT_TLS_SERVER_NAME": "{pod}." + cluster.names.internal_service,
        "VAULT_K8S_AUTH_PATH": "kubernetes", "VAULT_K8S_ROLE": RolloutNames.of(cluster.names.release).vault_role,
        "VAULT_K8S_JWT_PATH": jwt_path,
    }


def run_job(command: str, env: dict[str, str], timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), command], env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def start_job(command: str, env: dict[str, str]) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, str(SCRIPT), command], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def load_ca(tls: servers.TLSFiles):
    """The test CA as servers.issue_server_cert wants it."""
    cert = x509.load_pem_x509_certificate(pathlib.Path(tls.ca_cert).read_bytes())
    key = serialization.load_pem_private_key(pathlib.Path(tls.ca_key).read_bytes(), password=None)
    return servers._CA(cert=cert, key=key, cert_path=tls.ca_cert, key_path=tls.ca_key)


def served_certificate(node: servers.VaultProcess) -> x509.Certificate:
    """The certificate a node presents now (not verified: only read)."""
    import ssl

    host, port = node.api_addr.removeprefix("https://").rsplit(":", 1)
    pem = ssl.get_server_certificate((host, int(port)), timeout=10)
    return x509.load_pem_x509_certificate(pem.encode())


@dataclass
class Observation:
    writes: list[tuple[int, float, float]] = field(default_factory=list)  # (i, started, took)
    failed_writes: list[str] = field(default_factory=list)
    samples: list[tuple[float, int]] = field(default_factory=list)  # (when, nodes running and unsealed)


class Observers:
    """A client writing one secret after another through whichever node is active (retrying for up to
    ``write_patience`` seconds, as a client behind the Service would), and a monitor counting the
    nodes that run unsealed, several times a second."""

    def __init__(self, cluster: RaftCluster, token: str, ca: str, write_patience: float = 20.0):
        self.cluster, self.token, self.ca, self.patience = cluster, token, ca, write_patience
        self.seen = Observation()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._write, daemon=True),
                        threading.Thread(target=self._monitor, daemon=True)]

    def __enter__(self) -> Observers:
        for t in self.threads:
            t.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for t in self.threads:
            t.join(timeout=self.patience + 30)

    def _write(self) -> None:
        for i in range(100_000):
            if self.stop.is_set():
                return
            started = time.monotonic()
            error: Exception | None = None
            for _ in range(int(self.patience * 20) + 1):
                try:
                    leader = self.cluster.leader(timeout=2)
                    servers.api("POST", leader.api_addr, f"secret/data/roll/item-{i}", token=self.token, ca=self.ca,
                                json={"data": {"value": str(i)}}, timeout=5)
                    error = None
                    break
                except Exception as exc:  # an election or a restart in progress: retry
                    error = exc
                if time.monotonic() - started > self.patience:
                    break
                time.sleep(0.1)
            if error is not None:
                self.seen.failed_writes.append(f"write {i} not accepted within {self.patience}s: {error}")
                return
            self.seen.writes.append((i, started, time.monotonic() - started))
            time.sleep(0.05)

    def _monitor(self) -> None:
        for _ in range(1_000_000):
            if self.stop.is_set():
                return
            up = 0
            for node in self.cluster.nodes:
                if not node.is_running():
                    continue
                try:
                    if servers.health(node.api_addr, ca=self.ca, timeout=1).get("sealed") is False:
                        up += 1
                except Exception:  # noqa: S110 - a node that does not answer is not counted
                    pass
            self.seen.samples.append((time.monotonic(), up))
            time.sleep(0.1)

    def read_back(self) -> list[int]:
        """The writes that are missing now."""
        leader = self.cluster.leader()
        missing = []
        for i, _, _ in self.seen.writes:
            try:
                data = servers.api("GET", leader.api_addr, f"secret/data/roll/item-{i}", token=self.token,
                                   ca=self.ca)
                if data["data"]["data"]["value"] != str(i):
                    missing.append(i)
            except servers.VaultAPIError:
                missing.append(i)
        return missing
