"""Installs without internet: charts from a copy on disk or an OCI registry, every image from a
private registry (images.registry), validated like every other setting."""

from __future__ import annotations

import io
import tarfile

import pytest

from components.model import ConfigError
from components.render.backup_job import AWS_CLI_IMAGE, BackupJob
from components.render.charts import chart_source
from components.render.external_secrets import OPERATOR_IMAGE, chart_values
from components.render.images import pulled_from
from tests import facts
from tests.harness import load_stack, run_stack

REGISTRY = "registry.example.com:5000/mirror"
# The vault-helm 0.34.1 chart's own metadata, as a copy on disk would have it.
CHART_YAML = "apiVersion: v2\nname: vault\nversion: 0.34.1\nappVersion: 2.0.4\nkubeVersion: '>= 1.20.0-0'\n"


def problems(stack: str, overrides: dict) -> str:
    with pytest.raises(ConfigError) as err:
        load_stack(stack, overrides)
    return str(err.value)


@pytest.fixture
def chart_dir(tmp_path, monkeypatch):
    """A chart folder under a project folder the program runs in (relative paths start there)."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "charts" / "vault").mkdir(parents=True)
    (tmp_path / "charts" / "vault" / "Chart.yaml").write_text(CHART_YAML)
    return tmp_path


# --- pure: where an image is pulled from ---------------------------------------------------------

@pytest.mark.parametrize(("reference", "expected"), [
    ("hashicorp/vault:1.21.4", f"{REGISTRY}/hashicorp/vault:1.21.4"),
    ("hashicorp/vault", f"{REGISTRY}/hashicorp/vault"),
    ("postgres:16.6-alpine", f"{REGISTRY}/library/postgres:16.6-alpine"),
    ("docker.io/library/postgres:16.6-alpine", f"{REGISTRY}/library/postgres:16.6-alpine"),
    ("ghcr.io/external-secrets/external-secrets", f"{REGISTRY}/external-secrets/external-secrets"),
    ("public.ecr.aws/aws-cli/aws-cli:2.31.23", f"{REGISTRY}/aws-cli/aws-cli:2.31.23"),
    ("localhost:5000/hashicorp/vault:1.21.4", f"{REGISTRY}/hashicorp/vault:1.21.4"),
    ("python@sha256:" + "a" * 64, f"{REGISTRY}/library/python@sha256:" + "a" * 64),
])
def test_each_image_keeps_its_path_and_tag_under_the_registry(reference, expected):
    assert pulled_from(reference, REGISTRY) == expected
    assert pulled_from(reference, "") == reference


def test_a_mirrored_reference_mirrors_to_itself():
    once = pulled_from("hashicorp/vault:1.21.4", "localhost:5000")
    assert pulled_from(once, "localhost:5000") == once


def test_chart_sources():
    assert chart_source("vault", "https://helm.releases.hashicorp.com", "") == chart_source(
        "vault", "https://helm.releases.hashicorp.com", "")
    https = chart_source("vault", "https://helm.releases.hashicorp.com", "")
    assert (https.chart, https.repository) == ("vault", "https://helm.releases.hashicorp.com")
    oci = chart_source("vault", "oci://registry.example.com/charts/", "")
    assert (oci.chart, oci.repository) == ("oci://registry.example.com/charts/vault", None)
    disk = chart_source("vault", "https://helm.releases.hashicorp.com", "charts/vault")
    assert (disk.chart, disk.repository) == ("charts/vault", None)


# --- the settings, validated -------------------------------------------------------------------

@pytest.mark.parametrize("registry", ["registry.example.com", "localhost:5000", "registry:5000/team/mirror",
                                      "123456789012.dkr.ecr.eu-west-1.amazonaws.com/mirror"])
def test_registries_accepted(registry):
    assert load_stack("dev", {"images": {"registry": registry}}).images.registry == registry


@pytest.mark.parametrize(("registry", "why"), [
    ("mirror", "is not a registry"),  # a runtime would read it as a Docker Hub user
    ("https://registry.example.com", "is a URL"),
    ("registry.example.com/Mirror", "is not a registry"),
    ("registry.example.com/", "is not a registry"),
])
def test_registries_refused_naming_the_key(registry, why):
    message = problems("dev", {"images": {"registry": registry}})
    assert "vault-platform:images.registry" in message and why in message


def test_chart_repository_may_be_an_oci_registry_but_nothing_else():
    config = load_stack("dev", {"cluster": {"chart": {"repository": "oci://registry.example.com/charts"}}})
    assert config.cluster.chart.repository == "oci://registry.example.com/charts"
    message = problems("dev", {"cluster": {"chart": {"repository": "http://charts.example.com"}}})
    assert "vault-platform:cluster.chart.repository" in message and "OCI registry" in message
    message = problems("dev", {"externalSecrets": {"chart": {"repository": "s3://charts"}}})
    assert "vault-platform:externalSecrets.chart.repository" in message


def test_a_chart_folder_or_tgz_with_the_pinned_version_is_accepted(chart_dir):
    config = load_stack("dev", {"cluster": {"chart": {"path": "charts/vault"}}})
    assert config.cluster.chart.path == "charts/vault"
    with tarfile.open(chart_dir / "vault-0.34.1.tgz", "w:gz") as tgz:
        data = CHART_YAML.encode()
        info = tarfile.TarInfo("vault/Chart.yaml")
        info.size = len(data)
        tgz.addfile(info, io.BytesIO(data))
    assert load_stack("dev", {"cluster": {"chart": {"path": "vault-0.34.1.tgz"}}}).cluster.chart.path


def test_a_chart_on_disk_must_exist_and_be_the_pinned_chart(chart_dir):
    message = problems("dev", {"cluster": {"chart": {"path": "charts/missing"}}})
    assert "vault-platform:cluster.chart.path: 'charts/missing' does not exist" in message
    message = problems("dev", {"cluster": {"chart": {"path": "charts/vault", "version": "0.33.0"}}})
    assert "holds chart vault 0.34.1, not vault 0.33.0 (cluster.chart.version)" in message
    message = problems("dev", {"externalSecrets": {"chart": {"path": "charts/vault"}}})
    assert "vault-platform:externalSecrets.chart.path" in message and "not external-secrets 2.9.0" in message
    (chart_dir / "broken.tgz").write_bytes(b"not an archive")
    assert "cannot be read as a chart" in problems("dev", {"cluster": {"chart": {"path": "broken.tgz"}}})


def test_a_chart_on_disk_and_a_repository_are_not_both_given(chart_dir):
    message = problems("dev", {"cluster": {"chart": {"path": "charts/vault",
                                                     "repository": "https://helm.releases.hashicorp.com"}}})
    assert "vault-platform:cluster.chart.repository: has no effect: cluster.chart.path is set" in message


def test_the_dev_postgres_image_is_pinned_and_only_with_dev_postgres():
    message = problems("dev", {"database": {"devPostgresImage": "postgres:latest"}})
    assert "vault-platform:database.devPostgresImage" in message and "pinned" in message
    message = problems("dev", {"database": {"devPostgres": False, "roles": [], "devPostgresImage": "postgres:15"}})
    assert "vault-platform:database.devPostgresImage: has no effect: database.devPostgres is false" in message


def test_the_injector_image_is_pinned():
    message = problems("dev", {"cluster": {"injector": {"image": {"tag": "latest"}}}})
    assert "vault-platform:cluster.injector.image.tag" in message


# --- what the program deploys ------------------------------------------------------------------

def test_without_a_registry_the_images_are_the_public_ones():
    rec = run_stack("dev")
    values = rec.one("kubernetes:helm.sh/v3:Release", "vault-cluster-release").get("values")
    assert values["server"]["image"]["repository"] == "hashicorp/vault"
    assert values["injector"]["image"] == {"repository": "hashicorp/vault-k8s", "tag": "1.7.6"}
    postgres = rec.one("kubernetes:apps/v1:Deployment", "vault-dev-postgres-deployment")
    assert postgres.get("spec.template.spec.containers[0].image") == "postgres:16.6-alpine"


def test_with_a_registry_every_pod_pulls_from_it():
    rec = run_stack("dev", {"images": {"registry": REGISTRY}, "database": {"devPostgresImage": "postgres:15.1"},
                            "cluster": {"injector": {"image": {"tag": "1.6.2"}},
                                        "rollout": {"image": "python:3.11"}}})
    release = rec.one("kubernetes:helm.sh/v3:Release", "vault-cluster-release")
    values = release.get("values")
    assert values["server"]["image"] == {"repository": f"{REGISTRY}/hashicorp/vault", "tag": "2.0.4"}
    assert values["injector"]["agentImage"] == {"repository": f"{REGISTRY}/hashicorp/vault", "tag": "2.0.4"}
    assert values["injector"]["image"] == {"repository": f"{REGISTRY}/hashicorp/vault-k8s", "tag": "1.6.2"}
    assert facts.unknown_paths(facts.chart("vault", "0.34.1"), facts.set_paths(values)) == []
    images = []
    for kind in ("kubernetes:apps/v1:Deployment", "kubernetes:batch/v1:Job", "kubernetes:batch/v1:CronJob"):
        for r in rec.of_type(kind):
            spec = r.get("spec.jobTemplate.spec.template.spec" if kind.endswith("CronJob") else "spec.template.spec")
            images += [c["image"] for c in spec.get("initContainers", []) + spec["containers"]]
    assert images, "no pods declared"
    assert [i for i in images if not i.startswith(f"{REGISTRY}/")] == []
    assert f"{REGISTRY}/library/postgres:15.1" in images
    assert f"{REGISTRY}/library/python:3.11" in images


def test_the_chart_comes_from_the_registry_or_the_disk(chart_dir):
    oci = run_stack("dev", {"cluster": {"chart": {"repository": "oci://registry.example.com/charts"}}})
    release = oci.one("kubernetes:helm.sh/v3:Release", "vault-cluster-release")
    assert release.get("chart") == "oci://registry.example.com/charts/vault"
    assert release.get("version") == "0.34.1" and release.get("repositoryOpts", None) in (None, {})
    # The program runs in its own project folder here: an absolute path.
    path = str(chart_dir / "charts" / "vault")
    disk = run_stack("dev", {"cluster": {"chart": {"path": path}}})
    release = disk.one("kubernetes:helm.sh/v3:Release", "vault-cluster-release")
    assert release.get("chart") == path and release.get("repositoryOpts", None) in (None, {})


def test_the_operator_and_the_backup_uploader_pull_from_the_registry():
    config = load_stack("dev", {"images": {"registry": REGISTRY}})
    values = chart_values(config)
    repository = f"{REGISTRY}/external-secrets/external-secrets"
    assert OPERATOR_IMAGE.startswith("ghcr.io/")
    assert [values["image"], values["webhook"]["image"], values["certController"]["image"]] == \
        [{"repository": repository}] * 3
    assert facts.unknown_paths(facts.chart("external-secrets", "2.9.0"), facts.set_paths(values)) == []
    assert "image" not in chart_values(load_stack("dev"))
    job = BackupJob.of(config)
    assert job.aws_cli_image == f"{REGISTRY}/{AWS_CLI_IMAGE.split('/', 1)[1]}"
    assert job.vault_image == f"{REGISTRY}/hashicorp/vault:2.0.4"
