"""What `make e2e` uses to look into the cluster and talk to Vault: kubectl, and Vault's HTTP API over
TLS verified with the stack's CA. Standard library only, besides kubectl."""

from __future__ import annotations

import json
import os
import pathlib
import shutil
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

CACHE = pathlib.Path(os.environ.get("VAULT_PLATFORM_CACHE") or pathlib.Path.home() / ".cache" / "vault-platform")
SERVER_SELECTOR = "app.kubernetes.io/name=vault,component=server"


class E2EError(RuntimeError):
    pass


def kubectl_path() -> str:
    """The cluster's own kubectl (make cluster builds it), else the one on PATH (kind users')."""
    built = CACHE / "cluster" / "bin" / "kubectl"
    found = str(built) if built.exists() else shutil.which("kubectl")
    if not found:
        raise E2EError("kubectl not found (make cluster builds one; kind users have theirs)")
    return found


def kubectl(*args: str, timeout: float = 120, stdin: str | None = None, check: bool = True) -> str:
    proc = subprocess.run([kubectl_path(), *args], input=stdin, capture_output=True, text=True, timeout=timeout,
                          check=False)
    if check and proc.returncode != 0:
        raise E2EError(f"kubectl {' '.join(args[:4])} ... exited {proc.returncode}: {proc.stderr.strip()[-2000:]}")
    return proc.stdout if check else proc.stdout + proc.stderr


def kubectl_json(*args: str, timeout: float = 120) -> Any:
    return json.loads(kubectl(*args, "-o", "json", timeout=timeout))


def apply(manifest: dict[str, Any]) -> None:
    kubectl("apply", "-f", "-", stdin=json.dumps(manifest))


def wait(what: str, limit: float, probe: Callable[[], Any], every: float = 2.0) -> Any:
    """Poll ``probe`` until it returns something true; that value. Raises after ``limit`` seconds."""
    deadline = time.monotonic() + limit
    while True:
        value = probe()
        if value:
            return value
        if time.monotonic() > deadline:
            raise E2EError(f"{what}: not within {limit:.0f}s")
        time.sleep(every)


def is_ready(pod: dict[str, Any]) -> bool:
    return any(c["type"] == "Ready" and c["status"] == "True" for c in pod.get("status", {}).get("conditions", []))


def server_pods(namespace: str) -> list[dict[str, Any]]:
    return kubectl_json("-n", namespace, "get", "pods", "-l", SERVER_SELECTOR)["items"]


def ready_server_pods(namespace: str) -> list[str]:
    return sorted(p["metadata"]["name"] for p in server_pods(namespace) if is_ready(p))


def pod_logs(namespace: str, pod: str, container: str | None = None) -> str:
    return kubectl("-n", namespace, "logs", pod, *(["-c", container] if container else []), check=False)


def endpoints(namespace: str, service: str) -> dict[str, bool]:
    """Pod name -> ready, for every address the Service's EndpointSlices list."""
    slices = kubectl_json("-n", namespace, "get", "endpointslices", "-l", f"kubernetes.io/service-name={service}")
    found: dict[str, bool] = {}
    for item in slices["items"]:
        for ep in item.get("endpoints") or []:
            name = (ep.get("targetRef") or {}).get("name", "?")
            found[name] = bool((ep.get("conditions") or {}).get("ready"))
    return found


@dataclass(frozen=True)
class Vault:
    """Vault's HTTP API at ``address``, verified with ``ca_pem``."""

    address: str
    ca_pem: str
    token: str = ""

    def call(self, method: str, path: str, body: Any = None, *, token: str | None = None,
             timeout: float = 10) -> tuple[int, Any]:
        """(status, JSON body); a connection failure is status 0 with the error as the body."""
        if not self.address.startswith("https://"):
            raise E2EError(f"{self.address!r} is not https")
        context = ssl.create_default_context(cadata=self.ca_pem)
        data = json.dumps(body).encode() if body is not None else None
        headers = {"X-Vault-Token": token if token is not None else self.token}
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(f"{self.address}/v1/{path}", data=data, method=method,  # noqa: S310
                                         headers=headers)
        try:
            with urllib.request.urlopen(request, context=context, timeout=timeout) as response:  # noqa: S310
                raw = response.read()
                return response.status, json.loads(raw) if raw else {}
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                return e.code, json.loads(raw) if raw else {}
            except ValueError:
                return e.code, {"errors": [raw.decode(errors="replace")[:300]]}
        except (OSError, ssl.SSLError) as e:
            return 0, {"errors": [f"{type(e).__name__}: {e}"]}

    def ok(self, method: str, path: str, body: Any = None, **kw: Any) -> Any:
        status, payload = self.call(method, path, body, **kw)
        if status not in (200, 204):
            raise E2EError(f"{method} {path} on {self.address}: HTTP {status} {payload}")
        return payload

    def at(self, address: str) -> Vault:
        return Vault(address, self.ca_pem, self.token)


def health(vault: Vault) -> dict[str, Any]:
    """sys/health as every pod answers it (standbys 200, sealed 503, uninitialized 501)."""
    status, payload = vault.call("GET", "sys/health?standbyok=true&perfstandbyok=true", token="")
    return {**(payload if isinstance(payload, dict) else {}), "http": status}
