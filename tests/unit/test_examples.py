"""examples/: programs another team would write with our components and their own arguments, run
under the mocks like the platform itself."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.harness import ROOT, canary_leaks, run_program

EXAMPLE = ROOT / "examples" / "cluster-and-bootstrap"


def test_cluster_and_bootstrap_from_args_in_code():
    project = yaml.safe_load((EXAMPLE / "Pulumi.yaml").read_text())
    rec = run_program(EXAMPLE / "__main__.py", "dev", {}, [], project=project["name"])
    assert rec.error is None, rec.error
    types = {r.type for r in rec.resources}
    assert "vault-platform:index:VaultPlatform" not in types
    cluster = rec.one("vault-platform:cluster:VaultCluster")
    assert cluster.name == "team-vault"
    release = rec.one("kubernetes:helm.sh/v3:Release")
    assert release.get("name") == "team-vault" and release.get("namespace") == "team-secrets"
    assert release.get("values.server.ha.replicas") == 3
    assert release.get("values.server.resources.requests") == {"memory": "64Mi", "cpu": "50m"}
    # The limits the example left out keep the component's defaults.
    assert release.get("values.server.resources.limits") == {"memory": "512Mi", "cpu": "500m"}
    assert rec.one("kubernetes:core/v1:Namespace").get("metadata.name") == "team-secrets"
    init = rec.one("pulumi-python:dynamic:Resource")
    assert init.get("mode") == "shamir" and init.get("shares") == 1 and init.get("expected_peers") == 3
    assert init.get("unseal_addresses") == ["https://127.0.0.1:8201", "https://127.0.0.1:8202",
                                            "https://127.0.0.1:8203"]
    # Init waits for the cluster: the release and the Services it reaches Vault through.
    assert rec.depends_on(init, release)
    assert rec.one("pulumi:providers:vault")
    assert set(rec.exports) == {"apiAddress", "caCertificate", "rootToken", "bootstrapStatus"}
    assert "rootToken" in rec.export_secret_paths
    assert canary_leaks(rec) == []


def test_components_register_real_outputs():
    rec = run_program(EXAMPLE / "__main__.py", "dev", {}, [], project="team-vault")
    cluster = rec.one("vault-platform:cluster:VaultCluster")
    assert cluster.outputs["namespace"] == "team-secrets"
    assert cluster.outputs["api_address"] == "https://127.0.0.1:8200"
    assert "BEGIN CERTIFICATE" in cluster.outputs["ca_cert_pem"]
    assert cluster.outputs["tls_secret_name"] == "team-vault-tls"
    bootstrap = rec.one("vault-platform:bootstrap:VaultBootstrap")
    assert bootstrap.outputs["status"] == "ready"
    assert set(bootstrap.outputs) == {"root_token", "unseal_keys", "status"}
    tls = rec.one("vault-platform:tls:VaultTls")
    assert tls.outputs["secret_name"] == "team-vault-tls"


def test_the_platform_registers_what_it_exports():
    from tests.harness import run_stack

    rec = run_stack("prod")
    platform = rec.one("vault-platform:index:VaultPlatform")
    assert set(platform.outputs) == set(rec.exports)
    assert platform.outputs["apiAddress"] == rec.exports["apiAddress"]
    assert platform.outputs["backupBucket"] == rec.exports["backupBucket"]


APPLICATION = ROOT / "examples" / "application-pod"


def test_an_application_program_gets_its_secrets_from_one_stack_output():
    import kubernetes_validate

    from tests.harness import run_stack

    platform = run_stack("prod")
    project = yaml.safe_load((APPLICATION / "Pulumi.yaml").read_text())
    rec = run_program(APPLICATION / "__main__.py", "prod", {}, [], project=project["name"],
                      stack_outputs=platform.exports)
    assert rec.error is None, rec.error
    # Everything below came through the StackReference (the mocks answer it with the platform's exports).
    deployment = rec.one("kubernetes:apps/v1:Deployment")
    myapp = platform.exports["applications"]["myapp"]
    assert deployment.get("metadata.namespace") == myapp["namespace"]
    template = deployment.get("spec.template")
    assert template["metadata"]["annotations"] == myapp["podAnnotations"]
    pod = template["spec"]
    assert pod["serviceAccountName"] == "myapp" and pod["volumes"] == myapp["podVolumes"]
    (container,) = pod["containers"]
    assert container["command"][-1] == ". /vault/secrets/config && . /vault/secrets/db && exec /app/server"
    assert container["envFrom"] == [{"secretRef": {"name": "myapp-secrets"}}]
    kubernetes_validate.validate({"apiVersion": "apps/v1", "kind": "Deployment",
                                  "metadata": deployment.get("metadata"), "spec": deployment.get("spec")},
                                 "1.30", strict=True)


# --- the components as another team gets them: a wheel, installed -----------------------------------

@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """The package built into a wheel from a copy of what it is made of, then installed on its own."""
    source = tmp_path_factory.mktemp("source")
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, source / name)
    shutil.copytree(ROOT / "components", source / "components", ignore=shutil.ignore_patterns("__pycache__"))
    wheels = tmp_path_factory.mktemp("wheels")
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    subprocess.run([*pip, "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(wheels), str(source)],
                   check=True, timeout=300, capture_output=True)
    (wheel,) = wheels.glob("vault_platform-*.whl")
    target = tmp_path_factory.mktemp("site")
    subprocess.run([*pip, "install", "--no-deps", "-q", "--target", str(target), str(wheel)], check=True, timeout=300,
                   capture_output=True)
    return target


def test_the_wheel_holds_the_components_and_the_jobs_scripts_only(installed):
    import components

    package = installed / "components"
    assert sorted(p.name for p in installed.iterdir() if not p.name.endswith(".dist-info")) == ["components"]
    for script in ("backup.sh", "vault_rollout.py"):
        assert (package / "resources" / "jobs" / script).read_text() == \
            (ROOT / "components" / "resources" / "jobs" / script).read_text()
    (dist,) = installed.glob("vault_platform-*.dist-info")
    assert dist.name == f"vault_platform-{components.__version__}.dist-info"
    metadata = (dist / "METADATA").read_text()
    assert "Requires-Dist: pulumi==3.272.0" in metadata and "Requires-Dist: pulumi_vault==7.14.0" in metadata
    # Every public name resolves, from the installed copy, in a process that cannot see this checkout.
    probe = ("import sys, components; names = [n for n in components.__all__ if n != '__version__'];"
             "[getattr(components, n) for n in names];"
             "from components.resources.backup import read_script; assert read_script().startswith('#!');"
             "print(components.__file__, len(names))")
    out = subprocess.run([sys.executable, "-c", probe], cwd=installed.parent, capture_output=True, text=True,
                         timeout=120, env={**os.environ, "PYTHONPATH": str(installed)})
    assert out.returncode == 0, out.stderr
    where, count = out.stdout.split()
    assert Path(where).parent == package and int(count) >= 25


def test_the_example_runs_from_the_installed_wheel_as_it_does_from_the_tree(installed):
    project = yaml.safe_load((EXAMPLE / "Pulumi.yaml").read_text())
    from_wheel = run_program(EXAMPLE / "__main__.py", "dev", {}, [], project=project["name"], import_path=installed)
    assert from_wheel.error is None, from_wheel.error
    assert Path(from_wheel.components_from) == installed / "components"
    from_tree = run_program(EXAMPLE / "__main__.py", "dev", {}, [], project=project["name"])
    assert Path(from_tree.components_from) == ROOT / "components"
    def shape(rec):
        return sorted((r.type, r.name) for r in rec.resources)
    assert shape(from_wheel) == shape(from_tree)
    assert len(from_wheel.resources) > 10



def test_the_example_installs_the_package_as_an_outside_program_does():
    project = yaml.safe_load((EXAMPLE / "Pulumi.yaml").read_text())
    assert project["runtime"]["options"] == {"toolchain": "pip", "virtualenv": "venv"}
    wanted = [line for line in (EXAMPLE / "requirements.txt").read_text().splitlines()
              if line and not line.startswith("#")]
    assert wanted == ["../.."] and (EXAMPLE / "../../pyproject.toml").resolve() == ROOT / "pyproject.toml"
    # Not into this project's venv: the tests prove a stack's state loads where this checkout cannot be
    # imported (tests/unit/test_layout.py).
    recipe = (ROOT / "Makefile").read_text().split("$(VENV)/.installed:")[1].split("\n\n")[0]
    installs = [line.strip() for line in recipe.splitlines() if "pip install" in line]
    assert installs == ["$(PY) -m pip install --quiet --disable-pip-version-check -r requirements-dev.txt"]
