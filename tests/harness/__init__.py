"""Run the program for a stack file under mocks and query what it registered.

    rec = run_stack("dev")
    release = rec.one("kubernetes:helm.sh/v3:Release")
    assert release.protect is False

Stack files are read as the CLI would: `secure:` values are replaced by stand-ins that carry the
marker CANARY, and their keys are marked secret. Extra test secrets and config overrides can be
layered on top.

Every run happens in one long-lived worker process that imports the SDKs once (tests/harness/worker.py),
and a run's recording is kept on disk under the hash of its request and of every source file it can
read, so a configuration that was already evaluated, by this test run or an earlier one with the same
sources, is not evaluated again.
"""

from __future__ import annotations

import atexit
import contextlib
import copy
import functools
import json
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.harness.fakes import CANARY, STACK_OUTPUTS_ENV
from tests.harness.worker import WORKER, program_env, run_cache, worker_env

ROOT = Path(__file__).resolve().parents[2]
PROJECT = "vault-platform"

# What a team would set with `pulumi config set --secret` for each stack. Every value is a canary.
TEST_SECRETS: dict[str, dict[str, Any]] = {
    "dev": {
        "kv": {"myapp/config": {"database_url": f"{CANARY}-dev-database-url",
                                "api_key": f"{CANARY}-dev-api-key"}},
    },
    # prod seeds no KV values from its config (the config refuses it: they would sit in the state).
    "prod": {
        "databasePasswords": {"app-postgres": f"{CANARY}-prod-db-password"},
    },
}


@dataclass
class Resource:
    type: str
    name: str
    urn: str
    parent: str
    custom: bool
    inputs: dict[str, Any]
    secret_paths: list[str]
    protect: bool
    retain_on_delete: bool
    depends_on: list[str]
    provider: str
    additional_secret_outputs: list[str]
    ignore_changes: list[str] = field(default_factory=list)
    delete_before_replace: bool = False
    replace_on_changes: list[str] = field(default_factory=list)
    # A component's registered outputs (register_outputs), resolved.
    outputs: dict[str, Any] = field(default_factory=dict)
    # The aliases it was registered with, as the engine gets them (a URN, or a spec of name and parent).
    aliases: list[dict[str, Any]] = field(default_factory=list)

    def alias_urns(self) -> list[str]:
        """This resource's earlier URNs, as its aliases name them, in the mocks' URN form (the parent's
        own type only; tests/integration/test_vault_side.py checks an alias through the real engine)."""
        found = []
        for alias in self.aliases:
            if "urn" in alias:
                found.append(alias["urn"])
                continue
            spec = alias.get("spec") or {}
            head, _, name = self.urn.rpartition("::")
            prefix, _, qualified = head.rpartition("::")
            own_type = qualified.rsplit("$", 1)[-1]
            if spec.get("parentUrn"):
                parent_type = spec["parentUrn"].split("::")[2].rsplit("$", 1)[-1]
                qualified = f"{parent_type}${spec.get('type') or own_type}"
            found.append(f"{prefix}::{qualified}::{spec.get('name') or name}")
        return found

    def get(self, path: str, default: Any = KeyError) -> Any:
        """Input at a dotted path (``values.server.ha.enabled``; ``[i]`` for list items)."""
        value: Any = self.inputs
        for part in _split(path):
            try:
                value = value[part]
            except (KeyError, IndexError, TypeError):
                if default is KeyError:
                    raise KeyError(f"{self.type}::{self.name} has no input {path!r}") from None
                return default
        return value

    def is_secret(self, path: str) -> bool:
        """True when the input at ``path`` or one of its parents was sent as a secret."""
        return any(path == p or path.startswith(p + ".") or path.startswith(p + "[") or p == ""
                   for p in self.secret_paths)


def _split(path: str) -> list[Any]:
    parts: list[Any] = []
    for chunk in path.split("."):
        while "[" in chunk:
            head, rest = chunk.split("[", 1)
            if head:
                parts.append(head)
            index, chunk = rest.split("]", 1)
            parts.append(int(index))
        if chunk:
            parts.append(chunk)
    return parts


@dataclass
class Recording:
    stack: str
    resources: list[Resource]
    exports: dict[str, Any]
    export_secret_paths: list[str]
    error: str | None
    # Files the program wrote for its providers, relative to the project folder (path -> text).
    local_files: dict[str, str] = field(default_factory=dict)
    # The folder the program imported the components package from.
    components_from: str | None = None

    def of_type(self, typ: str) -> list[Resource]:
        return [r for r in self.resources if r.type == typ]

    def one(self, typ: str, name: str | None = None) -> Resource:
        found = [r for r in self.of_type(typ) if name is None or r.name == name]
        if len(found) != 1:
            names = [r.name for r in self.of_type(typ)]
            raise AssertionError(f"expected one {typ} named {name!r}, found {len(found)} among {names}")
        return found[0]

    def by_urn(self, urn: str) -> Resource:
        for r in self.resources:
            if r.urn == urn:
                return r
        raise KeyError(urn)

    def named(self, name: str) -> Resource:
        found = [r for r in self.resources if r.name == name]
        if len(found) != 1:
            raise AssertionError(f"expected one resource named {name!r}, found {len(found)}")
        return found[0]

    def ancestors(self, resource: Resource) -> Iterator[Resource]:
        parent = resource.parent
        while parent:
            try:
                node = self.by_urn(parent)
            except KeyError:
                return
            yield node
            parent = node.parent

    def provider_of(self, resource: Resource) -> Resource | None:
        if not resource.provider:
            return None
        # A provider reference is "<urn>::<id>".
        return self.by_urn(resource.provider.rsplit("::", 1)[0])

    def depends_on(self, resource: Resource, other: Resource) -> bool:
        """True when ``resource`` waits for ``other``, directly or through ancestors' dependencies."""
        seen: set[str] = set()
        frontier = [resource]
        while frontier:
            node = frontier.pop()
            if node.urn in seen:
                continue
            seen.add(node.urn)
            if other.urn in node.depends_on:
                return True
            for urn in [*node.depends_on, node.parent]:
                with contextlib.suppress(KeyError):
                    frontier.append(self.by_urn(urn))
        return False


def load_stack_file(stack: str) -> tuple[dict[str, Any], set[str]]:
    """The stack file's config as Python values, with `secure:` leaves replaced by canaries."""
    path = ROOT / f"Pulumi.{stack}.yaml"
    stat = path.stat()
    return copy.deepcopy(_parse_stack_file(path, stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=16)
def _parse_stack_file(path: Path, _mtime_ns: int, _size: int) -> tuple[dict[str, Any], set[str]]:
    # Parsed once per version of the file (its modification time and size are the key).
    data = yaml.safe_load(path.read_text()) or {}
    secret_keys: set[str] = set()
    config: dict[str, Any] = {}
    for key, value in (data.get("config") or {}).items():
        found: list[bool] = []
        config[key] = _replace_secure(value, key, found)
        if found:
            secret_keys.add(key)
    return config, secret_keys


def _replace_secure(value: Any, path: str, found: list[bool]) -> Any:
    if isinstance(value, dict):
        if set(value) == {"secure"}:
            found.append(True)
            return f"{CANARY}-stackfile-{path}"
        return {k: _replace_secure(v, f"{path}.{k}", found) for k, v in value.items()}
    if isinstance(value, list):
        return [_replace_secure(v, f"{path}[{i}]", found) for i, v in enumerate(value)]
    return value


def merge(base: Any, override: Any) -> Any:
    """Deep-merge ``override`` into ``base``; a None value removes the key."""
    if isinstance(base, dict) and isinstance(override, dict):
        out = dict(base)
        for k, v in override.items():
            if v is None:
                out.pop(k, None)
            else:
                out[k] = merge(out.get(k), v)
        return out
    return copy.deepcopy(override)


def stack_config(stack: str, overrides: dict[str, Any] | None = None, secrets: dict[str, Any] | None = None,
                 with_test_secrets: bool = True) -> tuple[dict[str, str], list[str]]:
    """The config map the CLI would hand the program: {"vault-platform:key": text} and secret keys."""
    config, secret_keys = load_stack_file(stack)
    short = {k.split(":", 1)[1] if k.startswith(PROJECT + ":") else k: v for k, v in config.items()}
    test_secrets = merge(TEST_SECRETS.get(stack, {}) if with_test_secrets else {}, secrets or {})
    if test_secrets:
        short["secrets"] = merge(short.get("secrets") or {}, test_secrets)
        secret_keys.add(f"{PROJECT}:secrets")
    if overrides:
        short = merge(short, overrides)
    encoded = {}
    for key, value in short.items():
        full = key if ":" in key else f"{PROJECT}:{key}"
        encoded[full] = value if isinstance(value, str) else json.dumps(value)
    return encoded, sorted(secret_keys)


def load_stack(stack: str, overrides: dict[str, Any] | None = None, secrets: dict[str, Any] | None = None):
    """The validated PlatformConfig of a stack file (plus overrides), without running the program."""
    from components.model import load_config
    from components.resources.stack_config import chart_on_disk

    config, secret_keys = stack_config(stack, overrides, secrets)
    return load_config(config, set(secret_keys), read_chart=chart_on_disk)


def stack_file(config: dict[str, str], secret_keys: list[str]) -> str:
    """The stack file the CLI would have read this config from: secret values as `secure:` leaves."""
    data: dict[str, Any] = {}
    for key, text in config.items():
        try:
            value = json.loads(text)
        except ValueError:
            value = text
        data[key] = _secure(value) if key in secret_keys else value
    return yaml.safe_dump({"config": data}, sort_keys=True)


def _secure(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _secure(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_secure(v) for v in value]
    return {"secure": "v1:harness-ciphertext"}


def run_program(program: Path, stack: str, config: dict[str, str], secret_keys: list[str], *, project: str = PROJECT,
                preview: bool = False, stack_outputs: dict[str, Any] | None = None,
                import_path: Path | None = None) -> Recording:
    """Run any Pulumi Python program under the mocks, from a folder holding its stack file.

    ``stack_outputs``: what a StackReference in the program reads (the mocks answer with it).
    ``import_path``: a folder the package was installed into; the program then imports the components
    from there, in a process of its own, and cannot import them from this checkout."""
    request = _request(stack, config, secret_keys, preview, str(program), project, stack_outputs)
    if import_path is not None:
        fresh = {**json.loads(request), "import_path": str(import_path)}
        return _as_recording(fresh, _FreshRun(fresh).result())
    return _recording(request)


def _request(stack: str, config: dict[str, str], secret_keys: list[str], preview: bool,
             program: str = str(ROOT / "__main__.py"), project: str = PROJECT,
             stack_outputs: dict[str, Any] | None = None) -> str:
    """Everything a run's result depends on besides the source tree, as canonical JSON."""
    return json.dumps({"stack": stack, "config": config, "secret_keys": sorted(secret_keys), "preview": preview,
                       "program": program, "project": project, "env": program_env(),
                       "stack_outputs": stack_outputs}, sort_keys=True, default=str)


@functools.lru_cache(maxsize=256)
def _recording(request_json: str) -> Recording:
    request = json.loads(request_json)
    result = run_cache.get(request)
    if result is None:
        with run_cache.claim(request):
            result = run_cache.get(request)  # evaluated meanwhile by another process of this run
            if result is None:
                result = _evaluate(request)
                run_cache.put(request, result)
    return _as_recording(request, result)


def _as_recording(request: dict[str, Any], result: dict[str, Any]) -> Recording:
    return Recording(stack=request["stack"], resources=[Resource(**r) for r in result["resources"]],
                     exports=result.get("exports") or {}, export_secret_paths=result.get("export_secret_paths") or [],
                     error=result["error"], local_files=result.get("local_files") or {},
                     components_from=result.get("components_from"))


def _prepare(request: dict[str, Any], tmp: str) -> dict[str, Any]:
    """The request as a runner takes it: the stack file in a project folder of its own under ``tmp``."""
    workdir = Path(tmp, "project")
    workdir.mkdir()
    (workdir / f"Pulumi.{request['stack']}.yaml").write_text(stack_file(request["config"], request["secret_keys"]))
    env = dict(request["env"])
    if request.get("stack_outputs") is not None:
        outputs = Path(tmp, "stack-outputs.json")
        outputs.write_text(json.dumps(request["stack_outputs"]))
        env[STACK_OUTPUTS_ENV] = str(outputs)
    return {**request, "workdir": str(workdir), "env": env}


def _evaluate(request: dict[str, Any]) -> dict[str, Any]:
    """Run the program once in the shared worker."""
    with tempfile.TemporaryDirectory() as tmp:
        return WORKER.run(_prepare(request, tmp))


class _FreshRun:
    """One run in a process of its own, started now and collected by ``result()``."""

    def __init__(self, request: dict[str, Any]):
        self._tmp = tempfile.TemporaryDirectory()
        self._result = Path(self._tmp.name, "result.json")
        req = Path(self._tmp.name, "request.json")
        req.write_text(json.dumps(_prepare(request, self._tmp.name)))
        self._proc = subprocess.Popen([sys.executable, "-m", "tests.harness.runner", str(req), str(self._result)],
                                      cwd=ROOT, env=worker_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                      text=True)

    def cancel(self) -> None:
        if self._proc.poll() is None:
            self._proc.kill()
        self._proc.communicate()
        self._tmp.cleanup()

    def result(self) -> dict[str, Any]:
        try:
            stdout, stderr = self._proc.communicate(timeout=600)
            if self._proc.returncode != 0 or not self._result.exists():
                raise AssertionError(f"harness runner failed ({self._proc.returncode}):\n{stdout}\n{stderr}")
            return json.loads(self._result.read_text())
        finally:
            self._tmp.cleanup()


_FRESH: dict[str, _FreshRun] = {}


@atexit.register
def _cancel_fresh_runs() -> None:
    # A test that would have read one did not run (a failure stopped the session first).
    while _FRESH:
        _FRESH.popitem()[1].cancel()


def start_fresh(stack: str) -> None:
    """Start run_fresh(stack) now, in the background: on 2 cores it costs the test that reads it
    nothing while the tests before it run."""
    if stack not in _FRESH:
        config, secret_keys = stack_config(stack)
        _FRESH[stack] = _FreshRun(json.loads(_request(stack, config, secret_keys, False)))


def run_fresh(stack: str) -> dict[str, Any]:
    """The raw result of one run of a stack file in a process of its own, bypassing the worker and
    both caches (the one start_fresh began, if any)."""
    start_fresh(stack)
    return _FRESH.pop(stack).result()


def run_config(stack: str, config: dict[str, str], secret_keys: list[str] | tuple[str, ...] = (), *,
               preview: bool = False) -> Recording:
    """The program under the mocks with exactly this flat config (both caches apply), e.g. a stack file
    merged with an overlay of its own."""
    return _recording(_request(stack, config, list(secret_keys), preview))


def run_served(stack: str, overrides: dict[str, Any] | None = None, *, preview: bool = False) -> dict[str, Any]:
    """The raw result of one run in the shared worker, bypassing both caches."""
    config, secret_keys = stack_config(stack, overrides)
    return _evaluate(json.loads(_request(stack, config, secret_keys, preview)))


def run_stack(stack: str, overrides: dict[str, Any] | None = None, secrets: dict[str, Any] | None = None, *,
              preview: bool = False, expect_error: bool = False, with_test_secrets: bool = True) -> Recording:
    config, secret_keys = stack_config(stack, overrides, secrets, with_test_secrets)
    rec = _recording(_request(stack, config, secret_keys, preview))
    if rec.error and not expect_error:
        raise AssertionError(f"stack {stack} failed under mocks:\n{rec.error}")
    if expect_error and not rec.error:
        raise AssertionError(f"stack {stack} was expected to fail but evaluated cleanly")
    return rec


def canary_leaks(rec: Recording) -> list[str]:
    """Every place a secret (a CANARY value) travels in a way that would expose it."""
    leaks: list[str] = []
    for r in rec.resources:
        is_k8s_object = r.type.startswith("kubernetes:") and not r.type.startswith("pulumi:providers:")
        for path, text in _strings(r.inputs, ""):
            if CANARY not in text:
                continue
            where = f"{r.type}::{r.name} input {path}"
            if not r.is_secret(path):
                leaks.append(f"{where} is not marked secret")
            if is_k8s_object and r.type != "kubernetes:core/v1:Secret":
                leaks.append(f"{where} puts a secret into a Kubernetes {r.type.split(':')[-1]}, not a Secret")
    for path, text in _strings(rec.exports, ""):
        if CANARY in text and path.split(".")[0].split("[")[0] not in rec.export_secret_paths:
            leaks.append(f"export {path} is not marked secret")
    return leaks


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _strings(v, f"{path}.{k}" if path else str(k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _strings(v, f"{path}[{i}]")
    elif isinstance(value, str):
        yield path, value
