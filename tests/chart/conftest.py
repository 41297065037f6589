"""The real hashicorp/vault chart, rendered by helm with the values the program gives its Release.

helm and the chart come from tools/helm/build.sh (the Go module proxy); without them these tests
fail, they never skip. The values are the Release's inputs from a run of the whole program under
the mocks (tests/harness), so what is rendered is exactly what `pulumi up` would hand helm.
"""

from __future__ import annotations

import functools
import json
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from components.model import PlatformConfig
from components.model.names import Names
from tests.harness import Recording, Resource, load_stack, run_stack
from tests.helm import chart_version, helm_and_chart

RELEASE = "kubernetes:helm.sh/v3:Release"
TRANSIT_CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
TRANSIT = {"address": "https://vault-unseal.example.com:8200", "keyName": "autounseal", "mountPath": "transit",
           "caCert": TRANSIT_CA}
# Each stack file, and each auto-unsealed through another Vault's transit engine (the seal whose CA
# reaches the pods through a Secret of the stack's, and its token through the operator's own Secret
# in prod, the stack's from its config in dev).
VARIANTS: dict[str, tuple[str, dict[str, Any] | None, dict[str, Any] | None]] = {
    "dev": ("dev", None, None),
    "prod": ("prod", None, None),
    "dev-transit": ("dev", {"unseal": {"type": "transit", "transit": TRANSIT}},
                    {"transitUnsealToken": "CANARY-transit-token"}),
    "prod-transit": ("prod", {"unseal": {"type": "transit", "awskms": None,
                                         "transit": {**TRANSIT, "tokenSecret": "vault-transit-token"}}}, None),
}
# The oldest Kubernetes the stacks' own objects are validated for, and the newest the schemas know.
KUBE_VERSIONS = ("1.30.0", kubernetes_validate.latest_version())


@functools.cache
def _tools() -> tuple[Path, Path]:
    return helm_and_chart()


def helm_tools_or_fail() -> tuple[Path, Path]:
    """(helm, the chart); the test fails, never skips, with the build's last lines when they cannot be had."""
    try:
        return _tools()
    except RuntimeError as exc:
        pytest.fail(f"helm and the vault chart are needed for the chart tests (tools/helm/build.sh):\n{exc}")


@pytest.fixture(scope="session")
def helm_tools() -> tuple[Path, Path]:
    return helm_tools_or_fail()


@dataclass
class Rendered:
    """One stack's vault Release as helm renders it, beside the run that declared it."""

    variant: str
    kube_version: str
    config: PlatformConfig
    names: Names
    rec: Recording
    release: Resource
    objects: list[dict[str, Any]]
    warnings: list[str]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [o for o in self.objects if o["kind"] == kind]

    def one(self, kind: str, name: str | None = None) -> dict[str, Any]:
        found = [o for o in self.of_kind(kind) if name is None or o["metadata"]["name"] == name]
        if len(found) != 1:
            names = [o["metadata"]["name"] for o in self.of_kind(kind)]
            raise AssertionError(f"expected one {kind} named {name!r} in the rendered chart, found {names}")
        return found[0]

    @property
    def values(self) -> dict[str, Any]:
        return self.release.inputs["values"]


def vault_release(rec: Recording) -> Resource:
    [release] = [r for r in rec.of_type(RELEASE) if r.get("chart") == "vault"]
    return release


@functools.cache
def _render(helm: Path, chart: Path, variant: str, kube_version: str) -> Rendered:
    stack, overrides, secrets = VARIANTS[variant]
    rec = run_stack(stack, overrides, secrets)
    release = vault_release(rec)
    if release.get("version") != chart_version():
        raise AssertionError(f"the {stack} stack installs chart {release.get('version')}, but tools/helm/go.mod pins "
                             f"github.com/hashicorp/vault-helm v{chart_version()}: bump them together")
    with tempfile.TemporaryDirectory() as tmp:
        values = Path(tmp, "values.json")
        values.write_text(json.dumps(release.inputs["values"]))
        # helm keeps nothing of its own for `template` of a local chart, but give it a home anyway.
        env = {"PATH": "/usr/bin:/bin", "HOME": tmp, "HELM_CACHE_HOME": f"{tmp}/cache",
               "HELM_CONFIG_HOME": f"{tmp}/config", "HELM_DATA_HOME": f"{tmp}/data"}
        proc = subprocess.run([str(helm), "template", release.get("name"), str(chart),
                               "--namespace", release.get("namespace"), "--values", str(values),
                               "--kube-version", kube_version, "--skip-tests"],
                              capture_output=True, text=True, env=env, timeout=120, check=False)
    if proc.returncode != 0:
        raise AssertionError(f"helm template failed for {variant}:\n{proc.stderr}")
    objects = [doc for doc in yaml.safe_load_all(proc.stdout) if doc]
    warnings = [line for line in proc.stderr.splitlines() if "warning" in line.lower()]
    config = load_stack(stack, overrides, secrets)
    return Rendered(variant, kube_version, config, Names.of(config), rec, release, objects, warnings)


@pytest.fixture(params=list(VARIANTS))
def rendered(request, helm_tools) -> Rendered:
    """The chart of each stack (and each with a transit seal) as the newest Kubernetes gets it."""
    return _render(*helm_tools, request.param, KUBE_VERSIONS[-1])


@pytest.fixture
def render(helm_tools):
    """render(variant, kube_version) -> Rendered."""
    return lambda variant, kube_version=KUBE_VERSIONS[-1]: _render(*helm_tools, variant, kube_version)
