"""The real Pulumi engine for the tests: the CLI built by tools/pulumi-engine/build.sh, driven
through the Automation API with inline programs, a local file backend and a passphrase.

An inline program runs in this process behind the Automation API's own language server, so the
CLI needs no Python language plugin; dynamic providers run through the
``pulumi-resource-pulumi-python`` shim installed next to the CLI, with this venv's Python.

``python -m tests.integration.engine up <spec.json>`` runs one `pulumi up` of the bootstrap program
in its own process, for the tests that kill it.
"""

from __future__ import annotations

import functools
import json
import os
import pathlib
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from typing import Any

from pulumi.dynamic import CreateResult, ReadResult, Resource, ResourceProvider

from tests.build_tools import built_tool
from tests.integration.servers import REPO_ROOT
from tests.pulumi_pickling import undo_dynamic_provider_pickling_patch

BUILD_SCRIPT = REPO_ROOT / "tools" / "pulumi-engine" / "build.sh"
PROJECT = "vault-platform"
STACK = "engine"
# How the engine marks a secret in the state: {SIG_KEY: SECRET_SIG, "ciphertext": ...}.
SIG_KEY, SECRET_SIG = "4dabf18193072939515e22adb298388d", "1b47061264138c4ac30d75fd1eb44270"


def build_engine(timeout: float = 3600.0) -> pathlib.Path:
    """Run tools/pulumi-engine/build.sh (a no-op when current; it waits for a build already running,
    e.g. the one `make test` starts in the background) and return the folder holding the CLI."""
    cli = built_tool(BUILD_SCRIPT, timeout)
    shim = cli.parent / "pulumi-resource-pulumi-python"
    for path in (cli, shim):
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise RuntimeError(f"{BUILD_SCRIPT} left no executable {path}")
    return cli.parent


# The real pulumi-vault provider plugin: built from its public sources once, outside this project, and
# shipped beside it (the Go module proxy refuses its module); its README says how and what it is.
VAULT_PLUGIN_DIR = REPO_ROOT.parent / "shared" / "tools" / "pulumi-resource-vault"
VAULT_PLUGIN_XZ = "pulumi-resource-vault-v7.11.0-linux-amd64.xz"


def vault_plugin_binary(cache: pathlib.Path) -> pathlib.Path:
    """The plugin, unpacked once into ``cache`` and checked against the SHA256SUMS shipped with it
    (VAULT_PLATFORM_VAULT_PLUGIN names an unpacked binary instead)."""
    import hashlib
    import lzma

    explicit = os.environ.get("VAULT_PLATFORM_VAULT_PLUGIN")
    if explicit:
        return pathlib.Path(explicit)
    source = VAULT_PLUGIN_DIR / VAULT_PLUGIN_XZ
    sums = VAULT_PLUGIN_DIR / "SHA256SUMS"
    if not source.is_file() or not sums.is_file():
        raise RuntimeError(f"no Vault provider plugin at {source} (with its SHA256SUMS): the engine tests need "
                           "the real plugin; set VAULT_PLATFORM_VAULT_PLUGIN to an unpacked one")
    expected = {}
    for line in sums.read_text().splitlines():
        digest, _, name = line.partition("  ")
        expected[name.strip()] = digest.strip()
    target = cache / "plugins" / "pulumi-resource-vault-7.11.0"
    unpacked_name = next((n for n in expected if n.startswith("pulumi-resource-vault ")), "pulumi-resource-vault")

    def digest(path: pathlib.Path) -> str:
        return hashlib.sha256(path.read_bytes()).hexdigest()

    if target.is_file() and digest(target) == expected.get(unpacked_name):
        return target
    if digest(source) != expected.get(VAULT_PLUGIN_XZ):
        raise RuntimeError(f"{source} does not match its SHA256SUMS")
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_suffix(f".tmp{os.getpid()}")
    tmp.write_bytes(lzma.decompress(source.read_bytes()))
    if unpacked_name in expected and digest(tmp) != expected[unpacked_name]:
        tmp.unlink()
        raise RuntimeError(f"{source} unpacks to a binary that does not match its SHA256SUMS")
    tmp.chmod(0o755)
    os.replace(tmp, target)
    return target


def install_vault_plugin(engine: Engine, binary: pathlib.Path) -> str:
    """Install the plugin for ``engine`` under the version the pulumi_vault SDK asks for; returns it."""
    from importlib.metadata import version

    wanted = version("pulumi_vault")
    engine.cli("plugin", "install", "resource", "vault", wanted, "--file", str(binary), timeout=300)
    return wanted


@dataclass
class Bootstrap:
    """What the inline program declares: VaultBootstrap's VaultInit and VaultReady (without the
    Vault provider, whose plugin does not build from the Go module proxy)."""

    address: str
    ca_cert_pem: str = ""
    mode: str = "shamir"
    shares: int = 3
    threshold: int = 2
    unseal_addresses: list[str] = field(default_factory=list)
    expected_peers: int = 1
    timeout: str = "2m"
    vault_token: str | None = None


def bootstrap_program(settings: Bootstrap) -> Callable[[], None]:
    """The inline program: the same two resources, names and parent type as the platform's."""

    def program() -> None:
        import pulumi

        undo_dynamic_provider_pickling_patch()
        from components.resources.bootstrap import VaultBootstrapArgs, initialize

        class Parent(pulumi.ComponentResource):
            def __init__(self, name: str):
                super().__init__("vault-platform:bootstrap:VaultBootstrap", name, None, None)

        parent = Parent("vault-bootstrap")
        args = VaultBootstrapArgs(
            address=settings.address, ca_cert_pem=settings.ca_cert_pem, mode=settings.mode,  # type: ignore[arg-type]
            expected_peers=settings.expected_peers,
            shares=settings.shares, threshold=settings.threshold, init_timeout=settings.timeout,
            unseal_addresses=tuple(settings.unseal_addresses),
            existing_token=pulumi.Output.secret(settings.vault_token) if settings.vault_token else None)
        init, ready = initialize("vault-bootstrap", args, parent)
        pulumi.export("rootToken", pulumi.Output.secret(init.root_token))
        pulumi.export("unsealKeys", pulumi.Output.secret(init.keys_base64))
        pulumi.export("initStatus", init.status)
        pulumi.export("status", ready.status)

    return program


class ByReferenceProvider(ResourceProvider):
    """A provider dill stores by reference: it is found again under this module and its name."""

    def create(self, props):
        return CreateResult(id_="by-reference", outs={})

    def read(self, id_, props):
        return ReadResult(id_=id_, outs=props)


class ByReference(Resource, module="test", name="ByReference"):
    def __init__(self, name: str):
        super().__init__(ByReferenceProvider(), name, {})


def by_reference_program() -> None:
    ByReference("by-reference")


@functools.cache
def _command(root: str):
    """The CLI for the Automation API, made once per test process: making one runs `pulumi version`."""
    from pulumi import automation as auto

    return auto.PulumiCommand(root=root)


@dataclass
class Engine:
    """One local backend and passphrase; workspaces (each with its own folder) share them."""

    bindir: pathlib.Path
    root: pathlib.Path
    passphrase: str = field(default_factory=lambda: secrets.token_urlsafe(24))

    @property
    def backend(self) -> pathlib.Path:
        return self.root / "state"

    def env(self) -> dict[str, str]:
        return {
            "PULUMI_BACKEND_URL": f"file://{self.backend}",
            "PULUMI_CONFIG_PASSPHRASE": self.passphrase,
            "PULUMI_HOME": str(self.root / "pulumi-home"),
            "PULUMI_SKIP_UPDATE_CHECK": "true",
            # Nothing is ever downloaded: every plugin a test needs is next to the CLI.
            "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
            # The dynamic-provider shim runs this venv's Python.
            "PULUMI_PYTHON_CMD": sys.executable,
            "PATH": f"{self.bindir}{os.pathsep}{os.environ.get('PATH', '')}",
            # The provider process must find what the state holds, not this checkout.
            "PYTHONPATH": "",
        }

    def stack(self, program: Callable[[], None], folder: str = "project", main: pathlib.Path | None = None,
              stack_name: str = STACK):
        """Create or select the test stack in the workspace ``root/<folder>``.

        ``main`` is the program's folder (the workspace's by default): the engine starts the
        dynamic-provider process there, as it does in a project folder with the CLI.
        """
        from pulumi import automation as auto

        work_dir = self.root / folder
        work_dir.mkdir(parents=True, exist_ok=True)
        self.backend.mkdir(parents=True, exist_ok=True)
        opts = auto.LocalWorkspaceOptions(
            work_dir=str(work_dir), pulumi_home=str(self.root / "pulumi-home"), env_vars=self.env(),
            pulumi_command=_command(str(self.bindir.parent)),
            project_settings=auto.ProjectSettings(name=PROJECT, runtime="python", main=str(main or work_dir)))
        return auto.create_or_select_stack(stack_name, project_name=PROJECT, program=program, opts=opts)

    def cli(self, *args: str, timeout: float = 120,
            cwd: pathlib.Path | None = None) -> subprocess.CompletedProcess[str]:
        """The CLI itself, for what the Automation API does not offer (an export with secrets shown)."""
        env = {**os.environ, **self.env()}
        self.root.mkdir(parents=True, exist_ok=True)
        proc = subprocess.run([str(self.bindir / "pulumi"), "--non-interactive", *args], cwd=cwd or self.root,
                              env=env, capture_output=True, text=True, timeout=timeout, check=False)
        if proc.returncode != 0:
            raise RuntimeError(f"pulumi {' '.join(args)} exited {proc.returncode}: {proc.stderr[-3000:]}")
        return proc

    def state(self, show_secrets: bool = False) -> dict[str, Any]:
        args = ["stack", "export", "--stack", f"organization/{PROJECT}/{STACK}"]
        if show_secrets:
            args.append("--show-secrets")
        return json.loads(self.cli(*args).stdout)

    def files(self) -> Iterable[pathlib.Path]:
        """Every file the engine wrote: the backend (state, history, backups), workspaces, its home."""
        return (p for p in self.root.rglob("*") if p.is_file())


def resources(state: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The exported state's resources by name."""
    return {r["urn"].rsplit("::", 1)[1]: r for r in state["deployment"].get("resources") or []}


def revealed(value: Any) -> Any:
    """A value of `pulumi stack export --show-secrets`: secrets are {SIG_KEY: ..., "plaintext": <JSON>}."""
    if isinstance(value, dict) and value.get(SIG_KEY) == SECRET_SIG and "plaintext" in value:
        return json.loads(value["plaintext"])
    return value


def plain_leaks(engine: Engine, values: Iterable[str]) -> list[str]:
    """Each (file, value) where a value appears as plain text in anything the engine wrote."""
    wanted = [v for v in values if v]
    leaks = []
    for path in engine.files():
        data = path.read_bytes()
        # Name the value by its position only: a failing test must not print the secret itself.
        leaks += [f"{path.relative_to(engine.root)} holds secret value #{i}" for i, v in enumerate(wanted)
                  if v.encode() in data]
    return leaks


# --- a `pulumi up` in its own process, to be killed -------------------------------------------------


def start_up(engine: Engine, settings: Bootstrap, log: pathlib.Path) -> subprocess.Popen[bytes]:
    spec = engine.root / "up-spec.json"
    spec.write_text(json.dumps({"bindir": str(engine.bindir), "root": str(engine.root),
                                "passphrase": engine.passphrase, "settings": asdict(settings)}))
    with open(log, "wb") as out:
        return subprocess.Popen([sys.executable, "-m", "tests.integration.engine", "up", str(spec)], cwd=REPO_ROOT,
                                stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)


def descendants(pid: int) -> list[int]:
    """``pid`` and every process below it (from /proc): the CLI puts its plugins in process groups
    of their own, so killing one group would leave them running."""
    children: dict[int, list[int]] = {}
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    found, frontier = [], [pid]
    while frontier and len(found) < 10_000:
        current = frontier.pop()
        found.append(current)
        frontier.extend(children.get(current, []))
    return found


def kill_tree(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGKILL ``proc`` and everything it started, as a cancelled CI job or a lost machine would."""
    for pid in descendants(proc.pid):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            continue
    proc.wait(timeout=timeout)
    deadline = time.monotonic() + timeout
    for _ in range(int(timeout / 0.1) + 1):
        if descendants(proc.pid) == [proc.pid] or time.monotonic() > deadline:
            break
        time.sleep(0.1)


def stop_leftovers(bindir: pathlib.Path) -> list[int]:
    """SIGKILL the engine processes (the CLI, provider hosts) still running below this process."""
    stopped = []
    for pid in descendants(os.getpid())[1:]:
        try:
            exe = os.readlink(f"/proc/{pid}/exe")
            cmdline = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if exe.startswith(str(bindir)) or b"pulumi.dynamic" in cmdline or b"tests.integration.engine" in cmdline:
            try:
                os.kill(pid, signal.SIGKILL)
                stopped.append(pid)
            except ProcessLookupError:
                continue
    return stopped


def _main(argv: list[str]) -> int:
    if len(argv) != 2 or argv[0] != "up":
        print("usage: python -m tests.integration.engine up <spec.json>", file=sys.stderr)
        return 2
    spec = json.loads(pathlib.Path(argv[1]).read_text())
    engine = Engine(pathlib.Path(spec["bindir"]), pathlib.Path(spec["root"]), spec["passphrase"])
    stack = engine.stack(bootstrap_program(Bootstrap(**spec["settings"])))
    stack.up(on_output=print)
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
