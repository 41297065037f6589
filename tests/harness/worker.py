"""The process that evaluates the program for the tests, and the disk cache of its answers.

One long-lived `python -m tests.harness.runner --serve` imports the providers' SDKs once and runs
the program once per request (each run in a fresh copy of Pulumi's runtime state). Its answers are
kept on disk under the hash of the request (stack, config, secrets, preview, program, the
environment the program reads) and of every file the program can read, so an unchanged
configuration is evaluated once per source tree, not once per test or per test run.

VAULT_PLATFORM_HARNESS_CACHE=off turns the disk cache off; a path puts it there.
"""

from __future__ import annotations

import atexit
import contextlib
import fcntl
import hashlib
import importlib.metadata
import json
import os
import selectors
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
RUN_TIMEOUT = 600
# What the program and the providers' SDKs read from the environment (provider defaults such as
# AWS_REGION or VAULT_SKIP_VERIFY, the deployer's login variables, the mocks' stack outputs).
PROGRAM_ENV_PREFIXES = ("AWS_", "VAULT_", "TERRAFORM_", "KUBECONFIG", "KUBERNETES_")
# Folders whose files the program never reads: the tests (but their harness), the docs, the venvs,
# and the build scripts of the test tools (tools/), which change far more often than the program.
SOURCE_SKIP = {"docs", "benchmarks", "tools", "venv", "node_modules", "__pycache__"}
# Nothing of the caller's Vault or CI login reaches the program: it logs in as a fresh checkout would.
LOGIN_ENV = {"VAULT_TOKEN", "VAULT_ADDR", "VAULT_CACERT", "VAULT_PLATFORM_WORKDIR", "VAULT_PLATFORM_VAULT_ROLE",
             "TERRAFORM_VAULT_AUTH_JWT", "ACTIONS_ID_TOKEN_REQUEST_URL", "ACTIONS_ID_TOKEN_REQUEST_TOKEN"}


def worker_env() -> dict[str, str]:
    """The worker's environment: the test process's, without the Pulumi CLI's settings, without any
    login, and without what the program reads, which each request brings (program_env)."""
    return {k: v for k, v in os.environ.items()
            if not k.startswith(("PULUMI_", *PROGRAM_ENV_PREFIXES)) and k not in LOGIN_ENV}


def program_env() -> dict[str, str]:
    """The part of the current environment a run's result can depend on (it is part of the key)."""
    return {k: v for k, v in sorted(os.environ.items()) if k.startswith(PROGRAM_ENV_PREFIXES) and k not in LOGIN_ENV}


class Worker:
    """A `runner --serve` process, started on first use, restarted if it dies."""

    def __init__(self, preload: str | None = "components.resources.platform") -> None:
        self._preload = preload
        self._proc: subprocess.Popen[bytes] | None = None
        self._stderr: Any = None
        self._lock = threading.Lock()
        self.runs = 0
        self.seconds = 0.0

    def start(self) -> None:
        """Start the process now, so it imports the SDKs while the tests before the first run go on."""
        with self._lock:
            self._ensure()

    def run(self, request: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            started = time.monotonic()
            proc = self._ensure()
            assert proc.stdin is not None
            try:
                proc.stdin.write(json.dumps(request).encode() + b"\n")
                proc.stdin.flush()
                line = self._read_line(proc)
            except (BrokenPipeError, TimeoutError, EOFError) as exc:
                self._stop(kill=True)
                raise AssertionError(f"harness worker failed ({exc!r}):\n{self._stderr_tail()}") from None
            except BaseException:
                # Interrupted while the worker runs (Ctrl-C, pytest-timeout): its answer would be read
                # as the next request's. The next run starts in a new process.
                self._stop(kill=True)
                raise
            result = json.loads(line)
            self.runs += 1
            self.seconds += time.monotonic() - started
            if "runner_error" in result:
                # The run's set-up broke, not the program: start the next run in a new process.
                self._stop(kill=True)
                raise AssertionError(f"harness runner failed:\n{result['runner_error']}")
            return result

    def _ensure(self) -> subprocess.Popen[bytes]:
        if self._proc is not None and self._proc.poll() is None:
            return self._proc
        self._stderr = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the worker
        preload = ["--preload", self._preload] if self._preload else []
        self._proc = subprocess.Popen([sys.executable, "-m", "tests.harness.runner", "--serve", *preload], cwd=ROOT,
                                      env=worker_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                      stderr=self._stderr)
        return self._proc

    @staticmethod
    def _read_line(proc: subprocess.Popen[bytes]) -> bytes:
        assert proc.stdout is not None
        fd = proc.stdout.fileno()
        chunks: list[bytes] = []
        deadline = time.monotonic() + RUN_TIMEOUT
        with selectors.DefaultSelector() as sel:
            sel.register(fd, selectors.EVENT_READ)
            while True:
                left = deadline - time.monotonic()
                if left <= 0 or not sel.select(left):
                    raise TimeoutError(f"no answer within {RUN_TIMEOUT} s")
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    raise EOFError(f"the worker exited with {proc.wait()}")
                chunks.append(chunk)
                if chunk.endswith(b"\n"):
                    return b"".join(chunks)

    def _stderr_tail(self, size: int = 8000) -> str:
        if self._stderr is None:
            return ""
        self._stderr.seek(0, os.SEEK_END)
        self._stderr.seek(max(0, self._stderr.tell() - size))
        return self._stderr.read().decode(errors="replace")

    def _stop(self, *, kill: bool = False) -> None:
        proc, self._proc = self._proc, None
        if proc is None:
            return
        if kill:
            proc.kill()
        with contextlib.suppress(OSError):
            assert proc.stdin is not None
            proc.stdin.close()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def close(self) -> None:
        with self._lock:
            self._stop()


class RunCache:
    """Answers of earlier runs on disk, keyed by request and source tree."""

    def __init__(self) -> None:
        setting = os.environ.get("VAULT_PLATFORM_HARNESS_CACHE", "")
        self.enabled = setting.lower() not in ("off", "0", "no", "false")
        base = os.environ.get("VAULT_PLATFORM_CACHE") or Path.home() / ".cache" / "vault-platform"
        self.folder = Path(setting) if setting and self.enabled else Path(base) / "harness-runs"
        self.hits = 0
        self._pruned = False
        self._stamp: tuple[Any, ...] | None = None
        self._digest = ""

    def get(self, request: dict[str, Any]) -> dict[str, Any] | None:
        if not self.enabled:
            return None
        path = self.folder / f"{self._key(request)}.json"
        try:
            result = json.loads(path.read_text())
        except (OSError, ValueError):
            return None
        self.hits += 1
        with contextlib.suppress(OSError):
            os.utime(path)  # what is still used stays; see _prune
        return result

    def put(self, request: dict[str, Any], result: dict[str, Any]) -> None:
        if not self.enabled:
            return
        self.folder.mkdir(parents=True, exist_ok=True)
        if not self._pruned:
            self._prune()
        path = self.folder / f"{self._key(request)}.json"
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(json.dumps(result, default=str))
        tmp.replace(path)

    @contextlib.contextmanager
    def claim(self, request: dict[str, Any]) -> Iterator[None]:
        """Hold this request's lock while its answer is evaluated: another process about to evaluate
        the same request (an xdist worker of the same run) waits, then reads the answer instead of
        evaluating it again. One lock per first two hex digits of the key, so the lock files stay few."""
        if not self.enabled:
            yield
            return
        locks = self.folder / "locks"
        locks.mkdir(parents=True, exist_ok=True)
        with open(locks / f"{self._key(request)[:2]}.lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _prune(self, days: int = 14) -> None:
        """Forget answers no run has used for two weeks (older source trees, old configurations)."""
        self._pruned = True
        cutoff = time.time() - days * 86400
        for path in self.folder.glob("*.json"):
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < cutoff:
                    path.unlink()

    def _key(self, request: dict[str, Any]) -> str:
        # The program's own text too: a program outside the tree (a test's) is not in the digest.
        program = Path(request.get("program") or ROOT / "__main__.py")
        try:
            program_digest = hashlib.sha256(program.read_bytes()).hexdigest()
        except OSError:
            program_digest = ""
        text = json.dumps({"request": request, "program": program_digest, "sources": self.source_digest(),
                           "root": str(ROOT)}, sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    def source_digest(self) -> str:
        """A hash of every file the program can read and of the installed packages; rehashed only
        when a file's size or modification time changed since the last call."""
        files = sorted(_source_files())
        stamp = tuple((str(f), *_stat(f)) for f in files)
        if stamp != self._stamp:
            digest = hashlib.sha256(sys.version.encode())
            for dist in sorted(f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions()):
                digest.update(dist.encode() + b"\0")
            for f in files:
                digest.update(str(f.relative_to(ROOT)).encode() + b"\0")
                with contextlib.suppress(OSError):
                    digest.update(hashlib.sha256(f.read_bytes()).digest())
            self._stamp, self._digest = stamp, digest.hexdigest()
        return self._digest


def _stat(path: Path) -> tuple[int, int]:
    try:
        st = path.stat()
    except OSError:
        return (0, 0)
    return (st.st_size, st.st_mtime_ns)


def _source_files() -> list[Path]:
    found: list[Path] = []
    for folder, dirs, files in os.walk(ROOT):
        here = Path(folder)
        dirs[:] = [d for d in dirs if not d.startswith(".") and d not in SOURCE_SKIP
                   and not (here == ROOT / "tests" and d != "harness")
                   and not (here / d / "pyvenv.cfg").exists()]
        found.extend(here / f for f in files if not f.endswith((".pyc", ".md")))
    return found


WORKER = Worker()
run_cache = RunCache()
atexit.register(WORKER.close)
