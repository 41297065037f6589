"""The shape of the code: layers that import only downward, and nothing a deployed stack relies on
moved out from under it (resource URNs, the stored VaultInit provider)."""

from __future__ import annotations

import ast
import base64
import importlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
from pulumi.dynamic.dynamic import serialize_provider

from tests.harness import ROOT, run_stack

LAYERS = ("model", "render", "providers", "resources")
DATA = Path(__file__).parent / "data"


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
    return {m for m in found if m.startswith("components.")}


def test_every_module_lives_in_a_layer():
    loose = sorted(p.name for p in (ROOT / "components").glob("*.py") if p.name not in ("__init__.py", "vault_init.py"))
    assert loose == [], f"modules outside the layer folders: {loose}"
    assert sorted(p.name for p in (ROOT / "components").iterdir() if p.is_dir() and p.name != "__pycache__") == \
        sorted(LAYERS)


def test_no_module_imports_from_a_layer_above_it():
    problems = []
    for layer in LAYERS:
        for path in sorted((ROOT / "components" / layer).glob("*.py")):
            for module in _imports(path):
                target = module.split(".")[1]
                if target in LAYERS and LAYERS.index(target) > LAYERS.index(layer):
                    problems.append(f"components/{layer}/{path.name} imports {module}")
    assert problems == []


def _impurities(path: Path) -> list[str]:
    """What makes a module impure: importing Pulumi or its SDKs, or touching files."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                 else [node.module or ""] if isinstance(node, ast.ImportFrom) else [])
        found += [f"imports {n}" for n in names if n.split(".")[0].startswith("pulumi")]
        if isinstance(node, ast.Call):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if called in ("open", "read_text", "read_bytes", "write_text", "write_bytes", "exists", "is_file",
                          "is_dir", "iterdir", "glob"):
                found.append(f"calls {called}()")
    return found


def test_the_model_and_the_builders_are_pure():
    """Plain data in, plain data out: the I/O (Pulumi, files) is in providers and resources."""
    problems = [f"components/{layer}/{path.name} {what}" for layer in ("model", "render")
                for path in sorted((ROOT / "components" / layer).glob("*.py")) for what in _impurities(path)]
    assert problems == []


def test_the_purity_check_sees_pulumi_and_files(tmp_path):
    bad = tmp_path / "x.py"
    bad.write_text("import pulumi\nfrom pulumi_kubernetes import core\nfrom pathlib import Path\n"
                   "Path('x').read_text()\nopen('y')\n")
    assert _impurities(bad) == ["imports pulumi", "imports pulumi_kubernetes", "calls read_text()", "calls open()"]


def test_the_layering_check_sees_an_upward_import(tmp_path):
    bad = tmp_path / "x.py"
    bad.write_text("from components.resources.cluster import VaultCluster\nimport components.model.names\n")
    assert _imports(bad) == {"components.resources.cluster", "components.model.names"}


@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_no_resource_of_a_deployed_stack_changes_its_urn(stack):
    """Each URN the program registered before the code moved into layers is still registered:
    renaming or re-parenting a resource would make `pulumi up` replace it (the namespace, the
    release with its volumes, the KMS key)."""
    before = json.loads((DATA / "urns-before-layout.json").read_text())[stack]
    rec = run_stack(stack)
    # A resource that moved since carries its earlier URN as an alias: the engine keeps it as it was.
    now = {r.urn for r in rec.resources} | {urn for r in rec.resources for urn in r.alias_urns()}
    # On purpose: the pulumi-tls and pulumi-random resources are gone (their plugins cannot be had
    # where the stack is built and tested). A dev stack gets a new internal CA once on the upgrade
    # (CHANGELOG.md); prod makes its certificates with cert-manager now.
    replaced = {urn for urn in before if "$tls:index/" in urn or "$random:index/" in urn}
    assert len(replaced) >= 5
    if stack == "prod":
        # cert-manager writes the server's TLS Secret now (docs/upgrades.md says how to hand it over).
        replaced |= {urn for urn in before if urn.endswith("$kubernetes:core/v1:Secret::vault-cluster-tls-secret")}
        # prod seeds no KV value from its config any more (it would sit in the state); the secret
        # stays in Vault (retain_on_delete).
        replaced |= {urn for urn in before if urn.endswith("$vault:kv/secretV2:SecretV2::vault-config-kv-myapp-config")}
    retired = RETIRED.get(stack, {})
    assert sorted(set(before) - now - replaced - set(retired)) == []
    readme = (ROOT / "CHANGELOG.md").read_text()
    for urn, name in retired.items():
        assert urn in before and urn not in now, urn
        assert f'select(endswith("::{name}"))' in readme, f"the changelog drops {name} from the state"


# Resources a stack stops declaring on purpose, each with its step in CHANGELOG.md:
# admin is written by the deploy identity, with break-glass, no longer by the deployer's run.
RETIRED = {"prod": {"urn:pulumi:prod::vault-platform::vault-platform:configuration:VaultConfiguration"
                    "$vault:index/policy:Policy::vault-config-policy-admin": "vault-config-policy-admin"}}


def _load_in_subprocess(encoded: str, *, cwd: Path, pythonpath: str | None) -> subprocess.CompletedProcess[str]:
    """Load a stored provider the way the engine's provider host does, from another folder, and
    use it (a read against nothing keeps the state as it is)."""
    code = (
        "import base64, sys, dill\n"
        "provider = dill.loads(base64.b64decode(sys.argv[1]))\n"
        "try:\n"
        "    props = {'address': 'http://127.0.0.1:9', 'timeout_seconds': 1, 'kept': 'x'}\n"
        "    result = provider.read('vault-init', props)\n"
        "    print(type(provider).__name__, result.outs['kept'])\n"
        # A provider whose read asks Vault (no Vault listens there) fails with its own message: its code ran.
        "except RuntimeError as exc:\n"
        "    print(type(provider).__name__, 'no-token' if str(exc).startswith('no working Vault token') else exc)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if pythonpath:
        env["PYTHONPATH"] = pythonpath
    return subprocess.run([sys.executable, "-c", code, encoded], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=60, check=False)


def test_a_provider_stored_before_the_layout_change_still_loads(tmp_path):
    """Stacks deployed before the move hold the provider by reference to components.vault_init."""
    encoded = (DATA / "vault-init-provider-before-layout.b64").read_text().strip()
    assert b"components.vault_init" in base64.b64decode(encoded)
    proc = _load_in_subprocess(encoded, cwd=tmp_path, pythonpath=str(ROOT))
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == ["VaultInitProvider", "x"]


def _without_module_names(raw: bytes) -> bytes:
    # A copied class keeps its __module__ as a plain string; dill must not import anything by it.
    return re.sub(rb"components\.providers\.[a-z_]+", b"", raw)


# (module, stored class, class name, what its read prints): the deploy identity's read asks Vault
# what it holds, so that a refresh sees drift; the others keep what the state recorded.
STORED = [("vault_init", "_STORED_PROVIDER", "VaultInitProvider", "x"),
          ("vault_init", "_STORED_READY_PROVIDER", "VaultReadyProvider", "x"),
          ("deploy_identity", "_STORED_PROVIDER", "DeployIdentityProvider", "no-token"),
          ("database_leases", "_STORED_PROVIDER", "DatabaseLeasesProvider", "x")]


@pytest.mark.parametrize(("module", "stored", "name", "read"), STORED)
def test_the_providers_are_now_stored_by_value_and_load_without_this_repository(tmp_path, module, stored, name,
                                                                               read):
    source = importlib.import_module(f"components.providers.{module}")
    cls = getattr(source, stored)
    # Every class of this package in its ancestry is a copy, or dill would store it by reference.
    for ancestor in cls.__mro__:
        if ancestor.__module__.startswith("components."):
            assert ancestor is not getattr(sys.modules[ancestor.__module__], ancestor.__name__, None), ancestor
    encoded = serialize_provider(cls())
    raw = base64.b64decode(encoded)
    assert b"components." not in _without_module_names(raw)
    # No checkout path in the state, so the same code serializes the same everywhere.
    assert str(ROOT).encode() not in raw
    assert serialize_provider(getattr(source, stored)()) == encoded
    proc = _load_in_subprocess(encoded, cwd=tmp_path, pythonpath=None)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [name, read]
    # And the folder it ran in really could not import this repository.
    check = subprocess.run([sys.executable, "-c", "import components"], cwd=tmp_path, capture_output=True,
                           text=True, timeout=60, check=False,
                           env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"})
    assert check.returncode != 0


@pytest.mark.parametrize(("typ", "resource", "name"), [
    ("pulumi-python:dynamic:Resource", "vault-bootstrap-init", "VaultInitProvider"),
    ("pulumi-python:dynamic/bootstrap:VaultReady", "vault-bootstrap-ready", "VaultReadyProvider")])
def test_the_program_stores_the_by_value_copies(tmp_path, typ, resource, name):
    """What the program really registers (``__provider``) loads without this repository."""
    encoded = run_stack("dev").one(typ, resource).get("__provider")
    assert b"components." not in _without_module_names(base64.b64decode(encoded))
    proc = _load_in_subprocess(encoded, cwd=tmp_path, pythonpath=None)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split() == [name, "x"]
