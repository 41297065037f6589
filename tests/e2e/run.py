"""`make e2e`: the dev stack deployed for real, with the real Pulumi engine and plugins, to the
current kube context (`make cluster` here; kind elsewhere), then checked in the cluster.

    python -m tests.e2e.run up          # deploy, check, `preview --expect-no-changes`, second `up`
    python -m tests.e2e.run teardown    # unprotect and destroy the e2e stack; check nothing is left

The stack is Pulumi.dev.yaml with tests/e2e/stack.yaml merged over it, in its own project folder
(.e2e/project, git-ignored) with its own file backend and plugins (.e2e/). The program is the
project's own __main__.py, run inline through the Automation API: the CLI built from Go modules has
no Python language host, and needs none for an inline program. Each step prints its time.

Plugins: pulumi-resource-kubernetes (tools/pulumi-engine/kubernetes-plugin.sh builds it) and
pulumi-resource-vault (E2E_VAULT_PLUGIN, or the build in ../shared/tools/pulumi-resource-vault).
Before it touches the cluster, the run lists the packages the program declares resources of (the
program under mocks, with the e2e config) and stops, naming them, if a plugin is missing.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import lzma
import os
import pathlib
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import yaml

ROOT = pathlib.Path(__file__).resolve().parents[2]
E2E = ROOT / ".e2e"
PROJECT_DIR = E2E / "project"
STACK = "e2e"
PROJECT = "vault-platform"
OVERLAY = pathlib.Path(__file__).with_name("stack.yaml")
CACHE = pathlib.Path(os.environ.get("VAULT_PLATFORM_CACHE") or pathlib.Path.home() / ".cache" / "vault-platform")
# A throwaway local state: the passphrase only keeps Pulumi from asking.
PASSPHRASE = "vault-platform-e2e"
CHART_MODULE = "github.com/hashicorp/vault-helm"
VAULT_PLUGIN = "pulumi-resource-vault-v7.11.0-linux-amd64.xz"
# Packages whose plugin ships with the CLI or is the dynamic-provider shim.
BUILT_IN = {"pulumi", "pulumi-python", "vault-platform"}


class E2EError(RuntimeError):
    pass


def log(message: str) -> None:
    print(f"[e2e] {message}", file=sys.stderr, flush=True)


@contextmanager
def step(label: str, times: dict[str, float]) -> Iterator[None]:
    start = time.monotonic()
    log(f"{label} ...")
    yield
    times[label] = time.monotonic() - start
    log(f"{label}: {times[label]:.0f}s")


def run(cmd: list[str], timeout: float, **kw: Any) -> str:
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, **kw)
    if proc.returncode != 0:
        raise E2EError(f"{' '.join(cmd[:3])} ... exited {proc.returncode}:\n{proc.stderr[-3000:]}")
    return proc.stdout


# --- the stack's config ---------------------------------------------------------------------------

def merge(base: Any, over: Any) -> Any:
    """Maps merge key by key; anything else (lists included) is replaced; null removes the key."""
    if isinstance(base, dict) and isinstance(over, dict):
        merged = {**base, **{k: merge(base.get(k), v) for k, v in over.items()}}
        return {k: v for k, v in merged.items() if v is not None}
    return over


def stack_config(chart_dir: pathlib.Path | None = None) -> dict[str, Any]:
    """Pulumi.dev.yaml's config with the e2e overlay merged over it; ``chart_dir`` replaces the
    overlay's relative chart path (the program under mocks runs in a folder of its own)."""
    dev = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]
    overlay = yaml.safe_load(OVERLAY.read_text())["config"]
    config = merge(dev, overlay)
    if chart_dir is not None:
        config[f"{PROJECT}:cluster"]["chart"]["path"] = str(chart_dir)
    return config


# --- what it needs: the CLI, the plugins, the chart --------------------------------------------

def build(script: str, timeout: float) -> pathlib.Path:
    out = run(["bash", str(ROOT / script)], timeout)
    return pathlib.Path(out.strip().splitlines()[-1])


def vault_plugin_archive() -> pathlib.Path:
    candidates = [os.environ.get("E2E_VAULT_PLUGIN", ""),
                  str(ROOT.parent / "shared" / "tools" / "pulumi-resource-vault" / VAULT_PLUGIN)]
    for candidate in candidates:
        if candidate and pathlib.Path(candidate).is_file():
            return pathlib.Path(candidate)
    raise E2EError(f"no {VAULT_PLUGIN}: set E2E_VAULT_PLUGIN to it (see ../shared/tools/pulumi-resource-vault)")


def unpack_chart(version: str) -> pathlib.Path:
    """The vault-helm chart from the Go module proxy, copied into the project folder."""
    info = json.loads(run(["go", "mod", "download", "-json", f"{CHART_MODULE}@v{version}"], 600, cwd=E2E))
    source = pathlib.Path(info["Dir"])
    target = PROJECT_DIR / "charts" / "vault"
    if target.exists():
        shutil.rmtree(target)
    # Only what a chart is: its metadata, values, schema and templates.
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("test", ".*", "Makefile", "CODEOWNERS"))
    for path in target.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return target


def required_packages(config: dict[str, Any]) -> set[str]:
    """Packages the program declares resources of with this config: the program run under mocks."""
    from tests.harness import _run_cached

    flat = {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()}
    rec = _run_cached(STACK, json.dumps(flat, sort_keys=True), json.dumps([]), False)
    if rec.error:
        raise E2EError(f"the program fails under mocks with the e2e config:\n{rec.error}")
    return {r.type.split(":", 1)[0] for r in rec.resources} - BUILT_IN


def install_plugins(pulumi: pathlib.Path, env: dict[str, str]) -> dict[str, str]:
    """kubernetes and vault into the e2e PULUMI_HOME, under the versions the SDKs ask for."""
    plugins: dict[str, tuple[pathlib.Path, str]] = {
        "kubernetes": (build("tools/pulumi-engine/kubernetes-plugin.sh", 3600),
                       importlib.metadata.version("pulumi_kubernetes")),
    }
    unpacked = E2E / "plugins" / "pulumi-resource-vault"
    if not unpacked.exists():
        unpacked.parent.mkdir(parents=True, exist_ok=True)
        unpacked.write_bytes(lzma.decompress(vault_plugin_archive().read_bytes()))
        unpacked.chmod(0o755)
    plugins["vault"] = (unpacked, importlib.metadata.version("pulumi_vault"))
    for name, (binary, version) in plugins.items():
        run([str(pulumi), "plugin", "install", "resource", name, version, "--file", str(binary)], 300,
            env={**os.environ, **env})
    return {name: version for name, (_, version) in plugins.items()}


def installed_plugins(pulumi: pathlib.Path, env: dict[str, str]) -> set[str]:
    out = run([str(pulumi), "plugin", "ls", "--json"], 120, env={**os.environ, **env})
    return {p["name"] for p in json.loads(out or "[]") if p.get("kind") == "resource"}


# --- the engine ---------------------------------------------------------------------------------

def engine_env(bindir: pathlib.Path) -> dict[str, str]:
    return {
        "PULUMI_BACKEND_URL": f"file://{E2E / 'state'}",
        "PULUMI_CONFIG_PASSPHRASE": PASSPHRASE,
        "PULUMI_HOME": str(E2E / "pulumi-home"),
        "PULUMI_SKIP_UPDATE_CHECK": "true",
        "PULUMI_DISABLE_AUTOMATIC_PLUGIN_ACQUISITION": "true",
        "PULUMI_PYTHON_CMD": sys.executable,
        "PATH": f"{bindir}{os.pathsep}{os.environ.get('PATH', '')}",
    }


def program() -> None:
    """The project's own program, as `pulumi up` would run __main__.py."""
    import runpy

    sys.path.insert(0, str(ROOT))
    runpy.run_path(str(ROOT / "__main__.py"), run_name="__main__")


def stack(pulumi: pathlib.Path, env: dict[str, str]):
    from pulumi import automation as auto

    opts = auto.LocalWorkspaceOptions(
        work_dir=str(PROJECT_DIR), pulumi_home=env["PULUMI_HOME"], env_vars=env,
        pulumi_command=auto.PulumiCommand(root=str(pulumi.parent.parent)),
        project_settings=auto.ProjectSettings(name=PROJECT, runtime="python", main=str(PROJECT_DIR)))
    return auto.create_or_select_stack(STACK, project_name=PROJECT, program=program, opts=opts)


# --- checks in the cluster ------------------------------------------------------------------------

def kubectl() -> str:
    found = shutil.which("kubectl") or str(CACHE / "cluster" / "bin" / "kubectl")
    if not pathlib.Path(found).exists():
        raise E2EError("kubectl not found (make cluster builds one; kind users have theirs)")
    return found


def wait(what: str, limit: float, probe: Callable[[], bool]) -> None:
    deadline = time.monotonic() + limit
    while not probe():
        if time.monotonic() > deadline:
            raise E2EError(f"{what}: not within {limit:.0f}s")
        time.sleep(2)


def vault_pods_ready(namespace: str, replicas: int) -> bool:
    out = run([kubectl(), "-n", namespace, "get", "pods", "-l", "app.kubernetes.io/name=vault,component=server",
               "-o", "json"], 60)
    pods = json.loads(out)["items"]
    ready = [p for p in pods if any(c["type"] == "Ready" and c["status"] == "True"
                                    for c in p.get("status", {}).get("conditions", []))]
    return len(ready) == replicas


def vault_api(address: str, ca_pem: str, path: str, token: str) -> Any:
    import ssl
    import urllib.request

    if not address.startswith("https://"):
        raise E2EError(f"api.address {address!r} is not https")
    context = ssl.create_default_context(cadata=ca_pem)
    request = urllib.request.Request(f"{address}{path}", headers={"X-Vault-Token": token})  # noqa: S310
    with urllib.request.urlopen(request, context=context, timeout=10) as response:  # noqa: S310
        return json.loads(response.read())


# --- the two commands -------------------------------------------------------------------------------

def prepare(times: dict[str, float]) -> tuple[pathlib.Path, dict[str, str], dict[str, Any]]:
    E2E.mkdir(exist_ok=True)
    (E2E / "state").mkdir(exist_ok=True)
    PROJECT_DIR.mkdir(parents=True, exist_ok=True)
    with step("Pulumi CLI (tools/pulumi-engine/build.sh)", times):
        pulumi = build("tools/pulumi-engine/build.sh", 3600)
    env = engine_env(pulumi.parent)
    config = stack_config()
    with step("chart vault-helm from the Go module proxy", times):
        chart_dir = unpack_chart(str(config[f"{PROJECT}:cluster"]["chart"]["version"]))
    with step("plugins", times):
        versions = install_plugins(pulumi, env)
        log(f"installed: {', '.join(f'{k} {v}' for k, v in versions.items())}")
    with step("the program under mocks with the e2e config: which plugins it needs", times):
        needed = required_packages(stack_config(chart_dir))
        missing = sorted(needed - installed_plugins(pulumi, env))
    log(f"the program declares resources of: {', '.join(sorted(needed))}")
    if missing:
        raise E2EError(f"no plugin for {', '.join(missing)}: the Go module proxy serves none (see "
                       "tools/pulumi-engine/README.md); nothing was deployed")
    (PROJECT_DIR / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump({"config": config}, sort_keys=True))
    return pulumi, env, config


def up(times: dict[str, float]) -> None:
    pulumi, env, config = prepare(times)
    os.chdir(PROJECT_DIR)
    s = stack(pulumi, env)
    namespace = config[f"{PROJECT}:kubernetes"].get("namespace", "vault")
    replicas = int(config[f"{PROJECT}:cluster"]["replicas"])
    with step("first pulumi up", times):
        s.up(on_output=lambda line: print(line, flush=True), color="never")
    with step(f"{replicas} Vault pods Ready", times):
        wait("Vault pods Ready", 600, lambda: vault_pods_ready(namespace, replicas))
    outputs = s.outputs()
    address = config[f"{PROJECT}:api"]["address"]
    ca_pem, token = outputs["caCertificate"].value, outputs["rootToken"].value
    with step("initialized, unsealed, Raft voters", times):
        health = vault_api(address, ca_pem, "/v1/sys/health", token)
        if not health.get("initialized") or health.get("sealed"):
            raise E2EError(f"Vault is not initialized and unsealed: {health}")
        servers = vault_api(address, ca_pem, "/v1/sys/storage/raft/configuration", token)["data"]["config"]["servers"]
        voters = [s for s in servers if s.get("voter")]
        if len(voters) != replicas:
            raise E2EError(f"{len(voters)} Raft voters, expected {replicas}: {servers}")
        log(f"{len(voters)} Raft voters, leader {next(s['node_id'] for s in servers if s.get('leader'))}")
    with step("pulumi preview --expect-no-changes", times):
        s.preview(expect_no_changes=True, color="never")
    with step("second pulumi up (no changes)", times):
        result = s.up(color="never")
        changed = {k: v for k, v in (result.summary.resource_changes or {}).items() if k != "same"}
        if changed:
            raise E2EError(f"the second up changed resources: {changed}")


def teardown(times: dict[str, float]) -> None:
    pulumi, env, config = prepare(times)
    os.chdir(PROJECT_DIR)
    s = stack(pulumi, env)
    namespace = config[f"{PROJECT}:kubernetes"].get("namespace", "vault")
    with step("unprotect and destroy", times):
        run([str(pulumi), "state", "unprotect", "--all", "--yes", "--stack", STACK], 300,
            env={**os.environ, **env}, cwd=PROJECT_DIR)
        s.destroy(color="never", on_output=lambda line: print(line, flush=True))
    with step("nothing left: the namespace and its volumes", times):
        wait("namespace deleted", 300, lambda: subprocess.run(
            [kubectl(), "get", "namespace", namespace], capture_output=True, check=False).returncode != 0)
        wait("volumes deleted", 120, lambda: not json.loads(run([kubectl(), "get", "pv", "-o", "json"], 60))["items"])


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description="make e2e: the dev stack on a real cluster")
    parser.add_argument("command", choices=["up", "teardown"])
    args = parser.parse_args(argv)
    times: dict[str, float] = {}
    start = time.monotonic()
    try:
        (up if args.command == "up" else teardown)(times)
    except E2EError as e:
        log(f"FAILED: {e}")
        return 1
    finally:
        for label, seconds in times.items():
            log(f"  {seconds:7.0f}s  {label}")
        log(f"  {time.monotonic() - start:7.0f}s  total")
    log("passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
