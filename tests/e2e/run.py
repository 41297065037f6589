"""`make e2e`: the dev stack deployed for real, with the real Pulumi engine and plugins, to the
current kube context (`make cluster` here; kind elsewhere), checked in the cluster, walked through
(tests/e2e/walkthrough.py) and torn down.

    python -m tests.e2e.run all             # up, walkthrough, teardown (make e2e)
    python -m tests.e2e.run up              # the operator, deploy, check, `preview --expect-no-changes`, second `up`
    python -m tests.e2e.run walkthrough [STEP ...]   # the walkthrough's steps against the deployed stack
    python -m tests.e2e.run teardown        # as `make teardown`, then the operator; check nothing is left

The stack is Pulumi.dev.yaml with tests/e2e/stack.yaml merged over it, in its own project folder
(.e2e/project, git-ignored) with its own file backend and plugins (.e2e/). The program is the
project's own __main__.py, run inline through the Automation API: the CLI built from Go modules has
no Python language host, and needs none for an inline program. Each step prints its time, each
walkthrough step its figures; they are also written to .e2e/figures.json.

The External Secrets Operator is the cluster's own (the stack has externalSecrets.install false): a
second inline stack, `e2e-operator`, installs the operator tools/cluster builds (0.16.2) from the
chart its module holds, before the dev stack needs its CRDs.

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
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import yaml

from tests.e2e.kube import E2EError, Vault, kubectl, kubectl_json, wait

ROOT = pathlib.Path(__file__).resolve().parents[2]
E2E = ROOT / ".e2e"
PROJECT_DIR = E2E / "project"
OPERATOR_DIR = E2E / "operator"
FIGURES = E2E / "figures.json"
STACK = "e2e"
OPERATOR_STACK = "e2e-operator"
PROJECT = "vault-platform"
OVERLAY = pathlib.Path(__file__).with_name("stack.yaml")
CACHE = pathlib.Path(os.environ.get("VAULT_PLATFORM_CACHE") or pathlib.Path.home() / ".cache" / "vault-platform")
# A throwaway local state: the passphrase only keeps Pulumi from asking.
PASSPHRASE = "vault-platform-e2e"
CHART_MODULE = "github.com/hashicorp/vault-helm"
ESO_MODULE = "github.com/external-secrets/external-secrets"
ESO_WRAPPER = ROOT / "tools" / "cluster" / "external-secrets"
VAULT_PLUGIN = "pulumi-resource-vault-v7.11.0-linux-amd64.xz"
# Packages whose plugin ships with the CLI or is the dynamic-provider shim.
BUILT_IN = {"pulumi", "pulumi-python", "vault-platform"}
TEARDOWN_ENV = "VAULT_PLATFORM_TEARDOWN"


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


def typed(config: dict[str, Any]):
    """The PlatformConfig the program makes of this config (names, ports, replicas)."""
    from components.model import load_config

    return load_config({k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()})


def write_stack_file(config: dict[str, Any]) -> None:
    (PROJECT_DIR / f"Pulumi.{STACK}.yaml").write_text(yaml.safe_dump({"config": config}, sort_keys=True))


# --- what it needs: the CLI, the plugins, the charts ------------------------------------------------

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


def module_dir(module: str, version: str, cwd: pathlib.Path) -> pathlib.Path:
    info = json.loads(run(["go", "mod", "download", "-json", f"{module}@{version}"], 600, cwd=cwd))
    return pathlib.Path(info["Dir"])


def copy_chart(source: pathlib.Path, target: pathlib.Path) -> pathlib.Path:
    if target.exists():
        shutil.rmtree(target)
    # Only what a chart is: its metadata, values, schema, templates and .helmignore (which keeps
    # what is not a manifest out of the templates).
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("test", "tests", "ci", ".git*", ".github",
                                                                  "Makefile", "CODEOWNERS"))
    for path in target.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
    return target


def chart_version(config: dict[str, Any]) -> str:
    """The vault-helm version the stack deploys: its own, or the model's default (the stack files leave
    it to the model, where it is pinned once)."""
    from components.model.platform import VAULT_CHART_VERSION

    return str(config[f"{PROJECT}:cluster"].get("chart", {}).get("version", VAULT_CHART_VERSION))


def unpack_chart(version: str) -> pathlib.Path:
    """The vault-helm chart from the Go module proxy, copied into the project folder."""
    return copy_chart(module_dir(CHART_MODULE, f"v{version}", E2E), PROJECT_DIR / "charts" / "vault")


def eso_version() -> str:
    for line in (ESO_WRAPPER / "go.mod").read_text().splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[0] == ESO_MODULE:
            return parts[1]
    raise E2EError(f"{ESO_WRAPPER}/go.mod requires no {ESO_MODULE}")


def unpack_operator(version: str) -> tuple[pathlib.Path, pathlib.Path]:
    """The operator's chart and CRDs from the module tools/cluster builds the operator from.

    The module's chart lists one dependency, the Bitwarden SDK server, off by default and not in the
    module (Helm refuses a chart whose listed dependency is missing): the copy leaves it out. The
    module's chart holds no CRDs (they are generated at release); they come from deploy/crds."""
    source = module_dir(ESO_MODULE, version, ESO_WRAPPER)
    chart = copy_chart(source / "deploy" / "charts" / "external-secrets", OPERATOR_DIR / "charts" / "external-secrets")
    meta = yaml.safe_load((chart / "Chart.yaml").read_text())
    meta.pop("dependencies", None)
    (chart / "Chart.yaml").write_text(yaml.safe_dump(meta, sort_keys=False))
    (chart / "Chart.lock").unlink(missing_ok=True)
    crds = OPERATOR_DIR / "crds.yaml"
    shutil.copyfile(source / "deploy" / "crds" / "bundle.yaml", crds)
    crds.chmod(0o644)
    return chart, crds


def required_packages(config: dict[str, Any]) -> set[str]:
    """Packages the program declares resources of with this config: the program run under mocks."""
    from tests.harness import run_config

    rec = run_config(STACK, {k: v if isinstance(v, str) else json.dumps(v) for k, v in config.items()})
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


def operator_program(chart: pathlib.Path, crds: pathlib.Path, version: str, registry: str, namespace: str,
                     service_account: str):
    """The External Secrets Operator as a cluster owner would install it: its CRDs, then its chart."""
    def declare() -> None:
        import pulumi
        import pulumi_kubernetes as k8s

        provider = k8s.Provider("k8s", enable_server_side_apply=True)
        opts = pulumi.ResourceOptions(provider=provider)
        definitions = k8s.yaml.v2.ConfigFile("crds", file=str(crds), opts=opts)
        image = {"repository": f"{registry}/external-secrets/external-secrets", "tag": version}
        k8s.helm.v3.Release(
            "external-secrets", name="external-secrets", chart=str(chart), namespace=namespace,
            create_namespace=True, skip_await=False, timeout=300,
            values={"installCRDs": False, "image": image, "webhook": {"image": image},
                    "certController": {"image": image},
                    "serviceAccount": {"create": True, "name": service_account}},
            opts=pulumi.ResourceOptions(provider=provider, depends_on=[definitions]))
    return declare


@dataclass
class Engine:
    """The CLI, its environment, the e2e config (raw and typed), and both stacks."""

    pulumi: pathlib.Path
    env: dict[str, str]
    config: dict[str, Any]
    chart_dir: pathlib.Path
    operator: tuple[pathlib.Path, pathlib.Path, str] | None = None
    _stack: Any = field(default=None, repr=False)

    @property
    def typed(self):
        return typed({**self.config, f"{PROJECT}:cluster": {**self.config[f"{PROJECT}:cluster"],
                                                            "chart": {**self.config[f"{PROJECT}:cluster"]["chart"],
                                                                      "path": str(self.chart_dir)}}})

    def stack(self):
        if self._stack is None:
            self._stack = self._select(STACK, PROJECT, PROJECT_DIR, program)
        return self._stack

    def operator_stack(self):
        assert self.operator is not None
        c = self.typed
        chart, crds, version = self.operator
        return self._select(OPERATOR_STACK, f"{PROJECT}-e2e-operator", OPERATOR_DIR,
                            operator_program(chart, crds, version, c.images.registry, c.external_secrets.namespace,
                                             c.external_secrets.service_account))

    def _select(self, name: str, project: str, work_dir: pathlib.Path, prog: Any):
        from pulumi import automation as auto

        work_dir.mkdir(parents=True, exist_ok=True)
        opts = auto.LocalWorkspaceOptions(
            work_dir=str(work_dir), pulumi_home=self.env["PULUMI_HOME"], env_vars=self.env,
            pulumi_command=auto.PulumiCommand(root=str(self.pulumi.parent.parent)),
            project_settings=auto.ProjectSettings(name=project, runtime="python", main=str(work_dir)))
        return auto.create_or_select_stack(name, project_name=project, program=prog, opts=opts)

    def up(self, **kw: Any):
        return self.stack().up(color="never", **kw)

    def outputs(self) -> dict[str, Any]:
        return {k: v.value for k, v in self.stack().outputs().items()}

    def vault(self) -> Vault:
        out = self.outputs()
        return Vault(self.config[f"{PROJECT}:api"]["address"], out["caCertificate"], out["rootToken"])


def prepare(times: dict[str, float]) -> Engine:
    E2E.mkdir(exist_ok=True)
    (E2E / "state").mkdir(exist_ok=True)
    PROJECT_DIR.mkdir(parents=True, exist_ok=True)
    with step("Pulumi CLI (tools/pulumi-engine/build.sh)", times):
        pulumi = build("tools/pulumi-engine/build.sh", 3600)
    env = engine_env(pulumi.parent)
    config = stack_config()
    with step("charts: vault-helm and the External Secrets Operator's, from the Go module proxy", times):
        chart_dir = unpack_chart(chart_version(config))
        engine = Engine(pulumi, env, config, chart_dir)
        c = engine.typed
        if any(a.uses_external_secrets for a in c.applications) and not c.external_secrets.install:
            version = eso_version()
            engine.operator = (*unpack_operator(version), version)
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
    write_stack_file(config)
    os.chdir(PROJECT_DIR)
    return engine


# --- checks in the cluster ------------------------------------------------------------------------

def pod_status(namespace: str, pod: str) -> dict[str, Any]:
    """`vault status` inside the pod (its own listener), or {} while it cannot answer."""
    out = kubectl("-n", namespace, "exec", pod, "-c", "vault", "--", "vault", "status", "-format=json",
                  check=False, timeout=30)
    try:
        return json.loads(out[out.index("{"):out.rindex("}") + 1])
    except ValueError:
        return {}


def serving(namespace: str, replicas: int) -> list[str]:
    """Server pods that are Ready, initialized and unsealed."""
    from tests.e2e.kube import is_ready, server_pods

    found = []
    for pod in server_pods(namespace):
        name = pod["metadata"]["name"]
        if is_ready(pod):
            status = pod_status(namespace, name)
            if status.get("initialized") and status.get("sealed") is False:
                found.append(name)
    return sorted(found)


class ReadyWatch:
    """Records when every server pod was first Ready, initialized and unsealed, from its start."""

    def __init__(self, namespace: str, replicas: int):
        self.namespace, self.replicas = namespace, replicas
        self.start = time.monotonic()
        self.ready_after: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()

    def _watch(self) -> None:
        while not self._stop.is_set() and self.ready_after is None:
            try:
                if len(serving(self.namespace, self.replicas)) == self.replicas:
                    self.ready_after = time.monotonic() - self.start
            except (E2EError, subprocess.TimeoutExpired):
                pass
            self._stop.wait(2)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=60)


def raft_voters(vault: Vault) -> list[dict[str, Any]]:
    return [s for s in vault.ok("GET", "sys/storage/raft/configuration")["data"]["config"]["servers"] if s.get("voter")]


def check_cluster(engine: Engine, figures: dict[str, Any]) -> None:
    c = engine.typed
    namespace, replicas = c.kubernetes.namespace, c.cluster.replicas
    good = serving(namespace, replicas)
    if len(good) != replicas:
        raise E2EError(f"{len(good)} of {replicas} Vault pods Ready, initialized and unsealed: {good}")
    vault = engine.vault()
    voters = raft_voters(vault)
    if len(voters) != replicas:
        raise E2EError(f"{len(voters)} Raft voters, expected {replicas}: {voters}")
    leader = next(s["node_id"] for s in voters if s.get("leader"))
    log(f"{replicas} pods Ready, initialized and unsealed; {len(voters)} Raft voters, leader {leader}")
    figures["raft_voters"] = len(voters)


def no_changes(engine: Engine) -> None:
    engine.stack().preview(expect_no_changes=True, color="never")


def changes(result: Any) -> dict[str, int]:
    return {k: v for k, v in (result.summary.resource_changes or {}).items() if k != "same"}


# --- the commands -----------------------------------------------------------------------------------

def forget_stale_state(engine: Engine) -> None:
    """A state whose namespace the cluster does not have is from a cluster since torn down (make
    cluster-down wipes etcd): the engine would diff against objects that are gone, so drop it."""
    c = engine.typed
    stacks = [(STACK, engine.stack, c.kubernetes.namespace)]
    if engine.operator is not None:
        stacks.append((OPERATOR_STACK, engine.operator_stack, c.external_secrets.namespace))
    for name, select, namespace in stacks:
        stack = select()
        if (stack.export_stack().deployment or {}).get("resources") and namespace_gone(namespace):
            log(f"stack {name}: its state is of a cluster that is gone (no namespace {namespace}); removed")
            stack.workspace.remove_stack(name, force=True, preserve_config=True)
            if name == STACK:
                engine._stack = None


def install_operator(engine: Engine, times: dict[str, float]) -> None:
    if engine.operator is None:
        return
    with step(f"the cluster's External Secrets Operator {engine.operator[2]} (stack {OPERATOR_STACK})", times):
        engine.operator_stack().up(color="never")


def up(engine: Engine, times: dict[str, float], figures: dict[str, Any]) -> None:
    forget_stale_state(engine)
    install_operator(engine, times)
    c = engine.typed
    namespace, replicas = c.kubernetes.namespace, c.cluster.replicas
    watch = ReadyWatch(namespace, replicas)
    try:
        with step("first pulumi up", times):
            result = engine.up(on_output=lambda line: print(line, flush=True))
        with step(f"{replicas} Vault pods Ready, initialized and unsealed", times):
            wait("Vault pods Ready", 600, lambda: watch.ready_after is not None, every=1)
    finally:
        watch.stop()
    figures["first_up_seconds"] = round(times["first pulumi up"], 1)
    figures["first_up_resources"] = (result.summary.resource_changes or {}).get("create", 0)
    if watch.ready_after is not None:
        figures["time_to_ready_seconds"] = round(watch.ready_after, 1)
        log(f"FIGURE time from the start of the first `pulumi up` to {replicas} pods Ready, initialized and "
            f"unsealed: {watch.ready_after:.0f}s")
    with step("initialized, unsealed, Raft voters", times):
        check_cluster(engine, figures)
    with step("pulumi preview --expect-no-changes", times):
        no_changes(engine)
    with step("second pulumi up (no changes)", times):
        changed = changes(engine.up())
        if changed:
            raise E2EError(f"the second up changed resources: {changed}")


def namespace_gone(name: str) -> bool:
    return "NotFound" in kubectl("get", "namespace", name, check=False)


def teardown(engine: Engine, times: dict[str, float]) -> None:
    """As `make teardown`: unprotect, then destroy with the program run under the tear-down switch."""
    c = engine.typed
    s = engine.stack()
    if not (s.export_stack().deployment.get("resources") or []):
        # As make teardown: a destroy running the program on an empty stack would keep its components.
        log("make teardown: the stack holds nothing; nothing to tear down")
        return
    with step("make teardown: unprotect, VAULT_PLATFORM_TEARDOWN=1 destroy --run-program", times):
        run([str(engine.pulumi), "state", "unprotect", "--all", "--yes", "--stack", STACK], 300,
            env={**os.environ, **engine.env}, cwd=PROJECT_DIR)
        os.environ[TEARDOWN_ENV] = "1"
        try:
            s.destroy(color="never", run_program=True, on_output=lambda line: print(line, flush=True))
        finally:
            os.environ.pop(TEARDOWN_ENV, None)
        left = s.export_stack().deployment.get("resources") or []
        if left:
            raise E2EError(f"the stack still holds {len(left)} resources after the destroy")
    if engine.operator is not None:
        with step(f"the operator (stack {OPERATOR_STACK}) destroyed", times):
            engine.operator_stack().destroy(color="never")
            # Helm leaves the namespace it created for the release.
            kubectl("delete", "namespace", c.external_secrets.namespace, "--ignore-not-found", "--wait=false")
    with step("nothing left: namespaces, volumes, what the stack put in the applications' namespaces", times):
        made = [c.kubernetes.namespace]
        if engine.operator is not None:
            made.append(c.external_secrets.namespace)
        # The applications' namespaces the stack created outlive it (retain_on_delete: removing an
        # application must not delete what it runs); the e2e run deletes them itself.
        for app in c.applications:
            if app.create_namespace:
                if namespace_gone(app.namespace):
                    raise E2EError(f"namespace {app.namespace} was deleted with the stack; it is retained")
                kubectl("delete", "namespace", app.namespace, "--wait=false")
                made.append(app.namespace)
        for name in made:
            wait(f"namespace {name} deleted", 300, lambda name=name: namespace_gone(name))
        wait("volumes deleted", 120, lambda: not kubectl_json("get", "pv")["items"])
        for app in c.applications:
            if not app.create_namespace:
                labels = kubectl_json("get", "namespace", app.namespace)["metadata"].get("labels", {})
                stray = [k for k in labels if k.startswith("vault.hashicorp.com")]
                accounts = kubectl("-n", app.namespace, "get", "serviceaccount", app.service_account, check=False)
                if stray or "NotFound" not in accounts:
                    raise E2EError(f"namespace {app.namespace} keeps {stray or app.service_account}")
        kinds = "crd,clusterrole,clusterrolebinding,mutatingwebhookconfiguration,validatingwebhookconfiguration"
        stray = [f"{i['kind']}/{i['metadata']['name']}" for i in kubectl_json("get", kinds)["items"]
                 if any(part in i["metadata"]["name"] for part in (c.cluster.release_name, "external-secrets"))]
        if stray:
            raise E2EError(f"cluster-wide objects left: {stray}")


def save_figures(figures: dict[str, Any]) -> None:
    old = json.loads(FIGURES.read_text()) if FIGURES.exists() else {}
    FIGURES.write_text(json.dumps({**old, **figures}, indent=2, sort_keys=True) + "\n")


def main(argv: list[str]) -> int:
    from tests.e2e import walkthrough

    parser = argparse.ArgumentParser(description="make e2e: the dev stack on a real cluster")
    parser.add_argument("command", choices=["all", "up", "walkthrough", "teardown"])
    parser.add_argument("steps", nargs="*", help=f"walkthrough steps (default: all): {', '.join(walkthrough.STEPS)}")
    args = parser.parse_args(argv)
    unknown = set(args.steps) - set(walkthrough.STEPS)
    if unknown:
        parser.error(f"unknown steps {sorted(unknown)}; known: {', '.join(walkthrough.STEPS)}")
    times: dict[str, float] = {}
    figures: dict[str, Any] = {}
    start = time.monotonic()
    failed: Exception | None = None
    engine: Engine | None = None
    try:
        engine = prepare(times)
        if args.command in ("all", "up"):
            up(engine, times, figures)
        if args.command in ("all", "walkthrough"):
            walkthrough.run(engine, args.steps or list(walkthrough.STEPS), times, figures)
    except Exception as e:
        failed = e
    try:
        keep = args.command != "all" or os.environ.get("E2E_KEEP")
        if engine is not None and (args.command == "teardown" or not keep):
            teardown(engine, times)
            if args.command == "all" and failed is None:
                with step("make teardown again: the stack holds nothing, nothing changes", times):
                    teardown(engine, times)
                    left = engine.stack().export_stack().deployment.get("resources") or []
                    if left:
                        raise E2EError(f"a second teardown left {len(left)} resources in the stack")
    except Exception as e:
        failed = failed or e
        log(f"teardown failed: {e}")
    for label, seconds in times.items():
        log(f"  {seconds:7.0f}s  {label}")
    log(f"  {time.monotonic() - start:7.0f}s  total")
    if figures:
        save_figures(figures)
        log("figures: " + json.dumps(figures, sort_keys=True))
    if failed is not None:
        log(f"FAILED: {type(failed).__name__}: {failed}")
        return 1
    log("passed")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
