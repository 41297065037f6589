"""Vault KV v2 over HTTPS, configured the way the Vault CLI is: VAULT_ADDR, VAULT_TOKEN (or
~/.vault-token), VAULT_CACERT, VAULT_NAMESPACE. Only the calls the migration needs, each allowed by
the migration policy: read and write a secret's data and its metadata. Every data write carries
check-and-set."""

from __future__ import annotations

import ipaddress
import os
import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlparse

import requests

from migration.mapping import KvState
from migration.retry import DEFAULT_BACKOFF, Backoff, Counter

# Vault answers these when it is overloaded (rate limit quotas), sealed or restarting.
RETRYABLE_STATUS = frozenset({412, 429, 500, 502, 503, 504})


class VaultError(RuntimeError):
    """A Vault request failed; the message names the path and Vault's errors, never a value."""


class PermissionDeniedError(VaultError):
    pass


class CasMismatchError(VaultError):
    pass


class UnreachableError(VaultError):
    """Vault cannot be reached or its certificate not verified: no point trying the next secret."""


class _RetryableError(Exception):
    def __init__(self, status: int, detail: str):
        super().__init__(f"HTTP {status}: {detail}")
        self.status = status


def _loopback(host: str | None) -> bool:
    if host in ("localhost",):
        return True
    try:
        return ipaddress.ip_address(host or "").is_loopback
    except ValueError:
        return False


class Vault:
    def __init__(self, address: str, token: str, ca_cert: str | None = None, namespace: str | None = None,
                 backoff: Backoff = DEFAULT_BACKOFF, timeout: float = 30.0):
        url = urlparse(address)
        if url.scheme not in ("https", "http") or not url.hostname:
            raise VaultError(f"VAULT_ADDR {address!r} is not an https:// URL")
        if url.scheme == "http" and not _loopback(url.hostname):
            raise VaultError(f"VAULT_ADDR {address!r} is plain http: secrets would cross the network unencrypted; "
                             "use https:// (plain http is accepted only on a loopback address)")
        if ca_cert and not Path(ca_cert).is_file():
            raise VaultError(f"VAULT_CACERT {ca_cert!r} is not a file (the stack exports the CA as caCertificate)")
        self.address = address.rstrip("/")
        self._token = token
        self._verify: Any = ca_cert or True
        self._namespace = namespace
        self.backoff = backoff
        self.timeout = timeout
        self.requests = Counter()
        self.retries = Counter()
        self._local = threading.local()
        # Proxies from the environment (HTTPS_PROXY, NO_PROXY), looked up once: requests would
        # scan the environment again on every call, which costs more than the call itself.
        self._proxies = requests.utils.get_environ_proxies(self.address)

    def __repr__(self) -> str:
        return f"Vault({self.address!r})"

    @classmethod
    def from_environment(cls, env: Mapping[str, str] = os.environ, backoff: Backoff = DEFAULT_BACKOFF) -> Vault:
        address = env.get("VAULT_ADDR")
        if not address:
            raise VaultError("VAULT_ADDR is not set (the Vault API address, e.g. the stack's apiAddress output)")
        token = env.get("VAULT_TOKEN")
        if not token:
            token_file = Path(env.get("HOME", str(Path.home()))) / ".vault-token"
            if token_file.is_file():
                token = token_file.read_text().strip()
        if not token:
            raise VaultError("VAULT_TOKEN is not set (a token with the migration policy: "
                             "`python -m migration policy` prints it)")
        return cls(address, token, env.get("VAULT_CACERT") or None, env.get("VAULT_NAMESPACE") or None, backoff)

    def _session(self) -> requests.Session:
        session = getattr(self._local, "session", None)
        if session is None:
            session = requests.Session()
            session.headers.update({"X-Vault-Token": self._token, "X-Vault-Request": "true"})
            if self._namespace:
                session.headers["X-Vault-Namespace"] = self._namespace
            session.verify = self._verify
            session.trust_env = False
            session.proxies.update(self._proxies)
            self._local.session = session
        return session

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None,
                 params: dict[str, str] | None = None) -> tuple[int, dict[str, Any]]:
        url = f"{self.address}/v1/{quote(path, safe='/')}"

        def once() -> tuple[int, dict[str, Any]]:
            self.requests.add()
            resp = self._session().request(method, url, json=body, params=params, timeout=self.timeout)
            payload: dict[str, Any] = {}
            if resp.content:
                try:
                    payload = resp.json()
                except ValueError:
                    payload = {}
            if resp.status_code in RETRYABLE_STATUS:
                raise _RetryableError(resp.status_code, _errors(payload))
            return resp.status_code, payload

        def retryable(exc: BaseException) -> bool:
            return isinstance(exc, (_RetryableError, requests.ConnectionError, requests.Timeout)) and \
                not isinstance(exc, requests.exceptions.SSLError)
        try:
            return self.backoff.call(once, retryable, self.retries)
        except _RetryableError as exc:
            raise VaultError(f"{method} {path}: {exc}") from None
        except requests.exceptions.SSLError:
            raise UnreachableError(f"{method} {path}: TLS verification of {self.address} failed; set VAULT_CACERT "
                                   "to the CA that signed Vault's certificate (the stack's caCertificate output)") \
                from None
        except requests.RequestException as exc:
            raise UnreachableError(f"{method} {path}: cannot reach {self.address} ({type(exc).__name__})") from None

    def _fail(self, method: str, path: str, status: int, payload: dict[str, Any]) -> VaultError:
        detail = _errors(payload)
        if status == 403:
            return PermissionDeniedError(f"{method} {path}: permission denied (HTTP 403). Does the token carry the "
                                         "migration policy for this path? `python -m migration policy` prints it")
        if status == 400 and "check-and-set" in detail:
            return CasMismatchError(f"{method} {path}: changed in Vault during the run (check-and-set refused the "
                                    "write)")
        return VaultError(f"{method} {path}: HTTP {status}: {detail}")

    def check(self) -> None:
        """Reach Vault (TLS verified) before anything else; a sealed or uninitialized Vault is refused."""
        # Every state answers 200 here, so the body says which one it is.
        status, payload = self._request("GET", "sys/health", params={
            "standbyok": "true", "perfstandbyok": "true", "sealedcode": "200", "uninitcode": "200"})
        if status != 200 or payload.get("sealed") or payload.get("initialized") is False:
            state = "sealed" if payload.get("sealed") else "not initialized" if payload.get("initialized") is False \
                else f"HTTP {status}"
            raise UnreachableError(f"Vault at {self.address} cannot serve requests ({state})")

    def check_kv_v2(self, mount: str) -> None:
        """Refuse anything but a KV v2 mount at exactly ``mount``: KV v1 would store the request's
        envelope (data, options) as a secret of its own, and a path inside another mount would land
        somewhere else. The UI's mount lookup answers any token with access below the mount."""
        api = f"sys/internal/ui/mounts/{mount}"
        status, payload = self._request("GET", api)
        if status == 403:
            raise PermissionDeniedError(f"GET {api}: permission denied: the token has no access to the mount "
                                        f"{mount}/ (does it carry the migration policy for this mount? `python -m "
                                        "migration policy` prints it)")
        if status != 200:
            raise self._fail("GET", api, status, payload)
        data = payload.get("data") or {}
        version = str((data.get("options") or {}).get("version") or "1")
        if data.get("path") != f"{mount}/" or data.get("type") != "kv" or version != "2":
            found = f"{data.get('type')} v{version} at {data.get('path')}" if data.get("type") == "kv" else \
                f"{data.get('type')} at {data.get('path')}"
            raise UnreachableError(f"--mount {mount}: not a KV v2 mount ({found}); copy into a KV v2 mount such as "
                                   "the stack's kv.path")

    # --- KV v2 -------------------------------------------------------------------------------------

    def read(self, mount: str, path: str) -> KvState | None:
        """The latest version and metadata of a KV secret, or None when there is none at all."""
        api = f"{mount}/data/{path}"
        status, payload = self._request("GET", api)
        if status == 200:
            data = payload.get("data") or {}
            md = data.get("metadata") or {}
            return KvState(int(md.get("version") or 0), dict(data.get("data") or {}),
                           dict(md.get("custom_metadata") or {}))
        if status == 404:
            # A deleted or destroyed latest version still has metadata; a secret never written has none.
            md = ((payload.get("data") or {}).get("metadata")) or None
            if md is None:
                return None
            return KvState(int(md.get("version") or 0), None, dict(md.get("custom_metadata") or {}))
        raise self._fail("GET", api, status, payload)

    def read_metadata(self, mount: str, path: str) -> tuple[int, dict[str, str]] | None:
        """(current version, custom metadata) of a KV secret, without its data; None when absent."""
        api = f"{mount}/metadata/{path}"
        status, payload = self._request("GET", api)
        if status == 200:
            data = payload.get("data") or {}
            return int(data.get("current_version") or 0), dict(data.get("custom_metadata") or {})
        if status == 404:
            return None
        raise self._fail("GET", api, status, payload)

    def write(self, mount: str, path: str, data: dict[str, Any], cas: int) -> tuple[int, dict[str, str]]:
        """Write a new version only if ``cas`` is the latest version (0: only if there is none).
        Returns its number and the secret's custom metadata as it was (Vault answers both)."""
        api = f"{mount}/data/{path}"
        status, payload = self._request("POST", api, {"data": data, "options": {"cas": cas}})
        if status in (200, 204):
            answer = payload.get("data") or {}
            return int(answer.get("version") or 0), dict(answer.get("custom_metadata") or {})
        raise self._fail("POST", api, status, payload)

    def write_metadata(self, mount: str, path: str, custom_metadata: Mapping[str, str]) -> None:
        """Replace the secret's custom metadata; its other settings (max versions, cas) stay."""
        api = f"{mount}/metadata/{path}"
        status, payload = self._request("POST", api, {"custom_metadata": dict(custom_metadata)})
        if status not in (200, 204):
            raise self._fail("POST", api, status, payload)


def _errors(payload: dict[str, Any]) -> str:
    errors = payload.get("errors") if isinstance(payload, dict) else None
    return "; ".join(str(e).strip() for e in errors) if errors else "no error message"
