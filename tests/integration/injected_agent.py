"""Run a real Vault Agent configured from pod annotations the way the Agent Injector configures the
agent it injects (vault-k8s ``agent-inject/agent``: annotations -> agent config JSON), outside a pod.

What a pod would have at fixed paths is given as local folders: the Secret the injector mounts at
``/vault/tls`` (``vault.hashicorp.com/tls-secret``), the projected token volume (mounted at the
injector's default service account path), and the shared secrets volume ``/vault/secrets``. Only
the Vault address changes (a test server on 127.0.0.1 instead of the in-cluster Service); every
annotation the stack exports is used as the injector uses it, and an annotation this reader does not
know fails the test instead of being ignored.
"""

from __future__ import annotations

import json
import os
import pathlib
import subprocess
import time
from dataclasses import dataclass
from typing import Any

PREFIX = "vault.hashicorp.com/"
# Where the injector mounts things in the agent containers (vault-k8s agent-inject/agent).
TLS_SECRET_MOUNT = "/vault/tls"
SECRETS_MOUNT = "/vault/secrets"
TOKEN_MOUNT = "/var/run/secrets/vault.hashicorp.com/serviceaccount"
KNOWN = ("agent-inject", "role", "auth-path", "service", "tls-secret", "ca-cert",
         "agent-service-account-token-volume-name")
PER_SECRET = ("agent-inject-secret-", "agent-inject-template-", "error-on-missing-key-")


@dataclass(frozen=True)
class AgentPod:
    """The local stand-ins for what the pod mounts."""

    root: pathlib.Path

    @property
    def tls(self) -> pathlib.Path:
        return self.root / "tls"

    @property
    def secrets(self) -> pathlib.Path:
        return self.root / "secrets"

    @property
    def token_dir(self) -> pathlib.Path:
        return self.root / "serviceaccount"

    def local(self, path: str) -> pathlib.Path:
        """A path inside the agent container, as a local path."""
        for mount, here in ((TLS_SECRET_MOUNT, self.tls), (SECRETS_MOUNT, self.secrets),
                            (TOKEN_MOUNT, self.token_dir)):
            if path == mount or path.startswith(mount + "/"):
                return here / path[len(mount):].lstrip("/")
        raise AssertionError(f"{path} is on no volume the injector mounts into the agent")


def token_volume(annotations: dict[str, str], volumes: list[dict[str, Any]]) -> tuple[str, str]:
    """(file name, audience) of the projected token the annotations point the agent at."""
    name = annotations[PREFIX + "agent-service-account-token-volume-name"]
    (volume,) = [v for v in volumes if v["name"] == name]
    (source,) = [s["serviceAccountToken"] for s in volume["projected"]["sources"] if "serviceAccountToken" in s]
    return source["path"], source["audience"]


def agent_config(annotations: dict[str, str], volumes: list[dict[str, Any]], pod: AgentPod, *,
                 address: str) -> dict[str, Any]:
    """The agent config the injector would write for the init container (render once, then exit)."""
    unknown = [k for k in annotations if not k.startswith(PREFIX)
               or (k[len(PREFIX):] not in KNOWN and not k[len(PREFIX):].startswith(PER_SECRET))]
    assert unknown == [], f"annotations this reader does not interpret: {unknown}"
    assert annotations[PREFIX + "agent-inject"] == "true"
    token_file, _ = token_volume(annotations, volumes)
    # The CA is only reachable through the Secret the injector mounts at /vault/tls.
    ca_cert = annotations[PREFIX + "ca-cert"]
    assert ca_cert.startswith(TLS_SECRET_MOUNT + "/") and annotations[PREFIX + "tls-secret"]
    templates = []
    secret_prefix = PREFIX + "agent-inject-secret-"
    for key, path in annotations.items():
        if not key.startswith(secret_prefix):
            continue
        raw = key[len(secret_prefix):]
        template = annotations[PREFIX + "agent-inject-template-" + raw]
        # The template reads the secret the annotation names.
        assert f'secret "{path}"' in template, (raw, path)
        templates.append({
            "destination": str(pod.secrets / raw.lower()),
            "contents": template,
            "left_delimiter": "{{",
            "right_delimiter": "}}",
            "error_on_missing_key": annotations.get(PREFIX + "error-on-missing-key-" + raw) == "true",
        })
    return {
        "pid_file": str(pod.root / "agent.pid"),
        "exit_after_auth": True,
        "vault": {"address": address, "ca_cert": str(pod.local(ca_cert))},
        "auto_auth": {
            "method": {"type": "kubernetes", "mount_path": annotations[PREFIX + "auth-path"],
                       "config": {"role": annotations[PREFIX + "role"],
                                  "token_path": str(pod.local(f"{TOKEN_MOUNT}/{token_file}"))}},
            "sink": [{"type": "file", "config": {"path": str(pod.root / "agent-token")}}],
        },
        "template": templates,
        # The chart's agentDefaults.templateConfig.exitOnRetryFailure.
        "template_config": {"exit_on_retry_failure": True},
    }


@dataclass
class AgentRun:
    returncode: int | None
    log: str
    seconds: float


def run_agent(binary: pathlib.Path, config: dict[str, Any], pod: AgentPod, *, timeout: float) -> AgentRun:
    """``<binary> agent -config=...``; waits at most ``timeout`` seconds, then stops it (returncode None)."""
    path = pod.root / "agent.json"
    path.write_text(json.dumps(config, indent=2))
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env["HOME"] = str(pod.root)
    log_path = pod.root / "agent.log"
    started = time.monotonic()
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([str(binary), "agent", f"-config={path}"], stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT, env=env, cwd=pod.root, start_new_session=True)
        try:
            returncode: int | None = proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
            returncode = None
    return AgentRun(returncode, log_path.read_text(errors="replace"), time.monotonic() - started)


def prepare(root: pathlib.Path, ca_pem: str, token: str, token_file: str) -> AgentPod:
    """The pod's volumes: the CA Secret (key ca.crt), the projected token, an empty secrets volume."""
    pod = AgentPod(root)
    for folder in (pod.tls, pod.secrets, pod.token_dir):
        folder.mkdir(parents=True, exist_ok=True)
    (pod.tls / "ca.crt").write_text(ca_pem)
    (pod.token_dir / token_file).write_text(token)
    return pod


def source(file: pathlib.Path, names: list[str]) -> dict[str, str]:
    """What a shell gets from `. file`: the values of ``names`` (exactly, quotes and all)."""
    script = f". {json.dumps(str(file))} && " + " && ".join(
        f"printf '%s\\0' \"${{{n}}}\"" for n in names)
    out = subprocess.run(["bash", "-c", script], capture_output=True, timeout=30, check=True,
                         env={"PATH": "/usr/bin:/bin"})
    values = out.stdout.split(b"\0")[:-1]
    return dict(zip(names, (v.decode() for v in values), strict=True))
