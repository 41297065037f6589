"""tools/cluster and the e2e stack: what can be checked without starting the cluster (make e2e
and make cluster-smoke prove the rest on a real one)."""

from __future__ import annotations

import hashlib
import io
import json
import re
import subprocess
import sys
import tarfile

import yaml

from components.model import load_config
from components.render.images import pulled_from
from tests.e2e import run as e2e
from tests.harness import ROOT

CLUSTER = ROOT / "tools" / "cluster"


def test_the_loopback_ports_are_kinds():
    # One source of truth for both clusters: kind/dev-cluster.yaml's extraPortMappings.
    out = subprocess.run(["bash", "-c", f"source {CLUSTER / 'lib.sh'} && port_mappings"], capture_output=True,
                         text=True, check=True, timeout=30).stdout.split()
    kind = yaml.safe_load((ROOT / "kind" / "dev-cluster.yaml").read_text())
    mappings = [m for node in kind["nodes"] for m in node.get("extraPortMappings", [])]
    assert out == [f"{m['listenAddress']}:{m['hostPort']}={m['containerPort']}" for m in mappings]
    assert "127.0.0.1:8200=30820" in out and len(out) == 6


def _image(tmp_path, name: str):
    rootfs = tmp_path / "rootfs"
    (rootfs / "home" / "app").mkdir(parents=True, exist_ok=True)
    (rootfs / "bin").mkdir(exist_ok=True)
    (rootfs / "bin" / "hello").write_text("#!/bin/sh\necho hello\n")
    (rootfs / "bin" / "hello").chmod(0o755)
    (rootfs / "home" / "app" / "data").write_text("x")
    out = tmp_path / name
    subprocess.run([sys.executable, str(CLUSTER / "images" / "mkimage.py"), "--rootfs", str(rootfs),
                    "--ref", "localhost:5000/test/hello:1.0", "--out", str(out), "--entrypoint", '["/bin/hello"]',
                    "--env", "PATH=/bin", "--user", "100:1000", "--owner", "home/app=100:1000"],
                   check=True, capture_output=True, timeout=60)
    return out


def test_mkimage_writes_a_reproducible_oci_archive_containerd_can_name(tmp_path):
    first, second = _image(tmp_path, "a.tar"), _image(tmp_path, "b.tar")
    assert first.read_bytes() == second.read_bytes()
    with tarfile.open(first) as archive:
        files = {m.name: archive.extractfile(m).read() for m in archive.getmembers() if m.isfile()}
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    [entry] = json.loads(files["index.json"])["manifests"]
    assert entry["annotations"]["io.containerd.image.name"] == "localhost:5000/test/hello:1.0"

    def blob(digest: str) -> bytes:
        data = files[f"blobs/sha256/{digest.split(':')[1]}"]
        assert f"sha256:{hashlib.sha256(data).hexdigest()}" == digest
        return data

    manifest = json.loads(blob(entry["digest"]))
    config = json.loads(blob(manifest["config"]["digest"]))
    assert config["config"]["Entrypoint"] == ["/bin/hello"] and config["config"]["User"] == "100:1000"
    [layer] = manifest["layers"]
    layer_bytes = blob(layer["digest"])
    assert config["rootfs"]["diff_ids"] == [layer["digest"]]
    with tarfile.open(fileobj=io.BytesIO(layer_bytes)) as fs:
        members = {m.name: m for m in fs.getmembers()}
    assert (members["home/app/data"].uid, members["home/app/data"].gid) == (100, 1000)
    assert (members["bin/hello"].uid, members["bin/hello"].mode & 0o777) == (0, 0o755)
    assert {m.mtime for m in members.values()} == {0}


def _images_built() -> set[str]:
    text = (CLUSTER / "images.sh").read_text()
    return set(re.findall(r'"[a-z0-9-]+\|\$registry/([^"]+)"', text))


def test_the_e2e_stack_is_the_dev_stack_with_only_what_the_cluster_needs_changed():
    dev = yaml.safe_load((ROOT / "Pulumi.dev.yaml").read_text())["config"]
    overlay = yaml.safe_load(e2e.OVERLAY.read_text())["config"]
    config = e2e.stack_config()
    assert set(config) == set(dev) | set(overlay)
    changed = set(overlay)
    assert changed == {"vault-platform:kubernetes", "vault-platform:images", "vault-platform:cluster",
                       "vault-platform:database", "vault-platform:applications", "vault-platform:externalSecrets"}
    # Within the maps it merges into, it sets only these; everything else is the dev stack's.
    assert overlay["vault-platform:cluster"].keys() == {"chart", "image", "injector", "rollout"}
    assert config["vault-platform:cluster"]["replicas"] == dev["vault-platform:cluster"]["replicas"] == 3
    assert config["vault-platform:api"] == dev["vault-platform:api"]
    # The operator already runs (make e2e installs the one the cluster builds); the rest is the dev stack's.
    assert overlay["vault-platform:externalSecrets"] == {"install": False}
    # The dev stack's application as it is, and one more whose store must not read its secrets.
    [dev_app] = dev["vault-platform:applications"]
    app, other = config["vault-platform:applications"]
    assert app == dev_app
    assert other["namespace"] != app["namespace"] and other["delivery"] == "externalSecrets"


def test_the_walkthrough_restores_by_the_runbooks_own_commands():
    from tests.e2e import restore

    runbook = restore.RUNBOOK.read_text()
    for command in restore.RUNBOOK_COMMANDS:
        assert command in runbook, command


def test_every_image_the_e2e_stack_runs_is_one_the_cluster_builds(tmp_path):
    chart = tmp_path / "vault"
    chart.mkdir()
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: vault\nversion: 0.34.1\n")
    raw = e2e.stack_config(chart)
    c = load_config({k: v if isinstance(v, str) else json.dumps(v) for k, v in raw.items()})
    registry = c.images.registry
    assert registry == "localhost:5000"
    wanted = {pulled_from(f"{c.cluster.image.repository}:{c.cluster.image.tag}", registry),
              pulled_from(f"{c.cluster.injector.image.repository}:{c.cluster.injector.image.tag}", registry),
              pulled_from(c.cluster.rollout.image, registry),
              pulled_from(c.database.dev_postgres_image, registry)}
    assert {w.removeprefix(f"{registry}/") for w in wanted} <= _images_built()


def test_the_cluster_wrapper_replaces_every_staging_module_by_the_matching_release():
    gomod = (CLUSTER / "go.mod").read_text()
    kube = re.search(r"k8s\.io/kubernetes v1\.(\d+)\.(\d+)", gomod)
    assert kube, "k8s.io/kubernetes is not required"
    replaces = re.findall(r"^\t(k8s\.io/[\w-]+) => (k8s\.io/[\w-]+) (v\S+)$", gomod, re.M)
    assert len(replaces) >= 30
    for old, new, version in replaces:
        assert old == new and version == f"v0.{kube.group(1)}.{kube.group(2)}", old
    build = (CLUSTER / "build.sh").read_text()
    assert f'KUBERNETES_VERSION="v1.{kube.group(1)}.{kube.group(2)}"' in build


def test_the_e2e_stack_needs_the_plugins_the_cluster_tools_build(tmp_path):
    """make e2e runs the program under the mocks with its own config to learn which plugins to install:
    the dev stack with the e2e overlay declares Kubernetes and Vault resources, nothing else."""
    chart = tmp_path / "vault"
    chart.mkdir()
    (chart / "Chart.yaml").write_text("apiVersion: v2\nname: vault\nversion: 0.34.1\n")
    assert e2e.required_packages(e2e.stack_config(chart)) == {"kubernetes", "vault"}


def test_the_e2e_unpacks_the_chart_version_the_model_pins():
    from components.model.platform import VAULT_CHART_VERSION

    assert e2e.chart_version(e2e.stack_config()) == VAULT_CHART_VERSION
