"""The rolling restart and scale-down Jobs: their manifests (valid for the API server, least
privilege), where they sit in each stack's graph, and what makes the restart run again."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import sys

import hcl
import kubernetes_validate
import pytest

from components.model.names import Names
from components.render import rollout_job
from components.render.helm_values import TLS_CERT_ANNOTATION, build_values, pod_annotations
from components.render.policies import ROLLOUT_POLICY, render, rollout_policy
from components.render.rollout_job import RolloutJob
from components.render.server_hcl import render_server_hcl
from components.resources.rollout import read_script
from tests.harness import ROOT, canary_leaks, load_stack, run_stack

K8S = kubernetes_validate.latest_version()
JOB = "kubernetes:batch/v1:Job"
RELEASE = "kubernetes:helm.sh/v3:Release"
SPEC = RolloutJob(names=Names("vault", "vault", 5), image="python:3.14.0-alpine3.22", tls_secret="vault-tls",
                  kubernetes_auth_path="kubernetes", pod_timeout_seconds=600, token_audience="vault")
SCRIPT = read_script()


def _script_module():
    spec = importlib.util.spec_from_file_location("vault_rollout", ROOT / "scripts" / "vault_rollout.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["vault_rollout"] = module
    spec.loader.exec_module(module)
    return module


@pytest.mark.parametrize("unseal", [False, True])
def test_every_manifest_is_valid_for_the_api_server(unseal):
    spec = RolloutJob(**{**SPEC.__dict__, "unseal_keys": unseal})
    for manifest in (rollout_job.service_account(spec.names), rollout_job.role(spec.names),
                     rollout_job.role_binding(spec.names), rollout_job.config_map(spec.names, SCRIPT),
                     rollout_job.unseal_secret(spec.names, ["a", "b"]),
                     rollout_job.restart_job(spec, "0123456789", SCRIPT), rollout_job.scale_down_job(spec, SCRIPT)):
        kubernetes_validate.validate(manifest, K8S, strict=True)


def test_the_job_may_read_the_statefulset_and_read_and_delete_its_pods_and_nothing_else():
    rules = rollout_job.role(SPEC.names)["rules"]
    assert rules == [
        {"apiGroups": ["apps"], "resources": ["statefulsets"], "resourceNames": ["vault"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["pods"], "resourceNames": [f"vault-{i}" for i in range(9)],
         "verbs": ["get", "delete"]},
    ]
    binding = rollout_job.role_binding(SPEC.names)
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "vault-rollout", "namespace": "vault"}]
    # In Vault: read the Raft membership and autopilot's view, step down, remove a departing server.
    assert rollout_policy().name == ROLLOUT_POLICY
    assert {r.path: r.capabilities for r in rollout_policy().rules} == {
        "sys/storage/raft/configuration": ("read",), "sys/storage/raft/autopilot/state": ("read",),
        "sys/storage/raft/remove-peer": ("update",), "sys/step-down": ("update", "sudo")}
    assert hcl.loads(render(rollout_policy()))["path"]["sys/step-down"]["capabilities"] == ["update", "sudo"]


def test_the_restart_job_runs_the_script_unprivileged_with_only_what_it_needs():
    job = rollout_job.restart_job(SPEC, "0123456789", SCRIPT)
    assert job["metadata"]["name"] == "vault-rollout-0123456789"
    # A Job that did not finish is replaced, so the next `pulumi up` resumes the roll.
    assert job["metadata"]["annotations"] == {"pulumi.com/replaceUnready": "true"}
    spec = job["spec"]
    assert spec["activeDeadlineSeconds"] == (5 + 2) * 600 + 300 and spec["backoffLimit"] == 2
    pod = spec["template"]["spec"]
    assert pod["serviceAccountName"] == "vault-rollout" and pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["image"] == "python:3.14.0-alpine3.22"
    assert container["command"] == ["python3", "/scripts/vault_rollout.py", "restart"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["runAsNonRoot"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["ROLLOUT_REPLICAS"] == "5" and env["ROLLOUT_POD_TIMEOUT"] == "600"
    assert env["VAULT_TLS_SERVER_NAME"] == "{pod}.vault-internal"
    assert env["VAULT_K8S_ROLE"] == ROLLOUT_POLICY and env["VAULT_CACERT"].endswith("/ca.crt")
    assert "VAULT_UNSEAL_KEYS_PATH" not in env and "VAULT_TOKEN" not in env
    volumes = {v["name"]: v for v in pod["volumes"]}
    # Only the CA of the TLS Secret: the servers' key stays out of this pod.
    assert volumes["vault-ca"]["secret"] == {"secretName": "vault-tls", "defaultMode": 0o444,
                                            "items": [{"key": "ca.crt", "path": "ca.crt"}]}
    token = volumes["vault-token"]["projected"]["sources"][0]["serviceAccountToken"]
    assert token["audience"] == "vault"
    annotations = spec["template"]["metadata"]["annotations"]
    assert annotations["vault-platform/rollout-script-sha256"] == hashlib.sha256(SCRIPT.encode()).hexdigest()


def test_shamir_restarts_unseal_with_keys_from_a_secret_and_the_scale_down_never_does():
    spec = RolloutJob(**{**SPEC.__dict__, "unseal_keys": True})
    restart = rollout_job.restart_job(spec, "0123456789", SCRIPT)["spec"]["template"]["spec"]
    env = {e["name"]: e["value"] for e in restart["containers"][0]["env"]}
    assert env["VAULT_UNSEAL_KEYS_PATH"] == "/var/run/secrets/vault-unseal/keys"
    assert {"name": "unseal-keys", "secret": {"secretName": "vault-rollout-unseal", "defaultMode": 0o440}} in \
        restart["volumes"]
    # The kubelet writes a Secret's files as root, group root, unless the pod has an fsGroup: then
    # that group owns them (with group read added). Mode 0400 without one left the keys unreadable
    # to the Job's unprivileged user, and every restart failed on a real cluster.
    context = restart["securityContext"]
    user, group = context["runAsUser"], context.get("fsGroup")
    assert user != 0 and group is not None
    mode = {v["name"]: v for v in restart["volumes"]}["unseal-keys"]["secret"]["defaultMode"]
    assert mode & 0o040, "the fsGroup must be able to read the keys"
    assert not mode & 0o007, "nobody else may"
    scale = rollout_job.scale_down_job(spec, SCRIPT)
    assert scale["metadata"]["name"] == "vault-scale-down-to-5"
    assert "unseal" not in json.dumps(scale)


def test_the_script_reads_its_settings_and_go_durations():
    module = _script_module()
    with pytest.raises(module.RolloutError, match="ROLLOUT_NAMESPACE is not set"):
        module.Settings.from_env({"ROLLOUT_REPLICAS": "3", "ROLLOUT_RELEASE": "vault", "VAULT_CACERT": "/ca"})
    settings = module.Settings.from_env({"ROLLOUT_NAMESPACE": "vault", "ROLLOUT_RELEASE": "vault",
                                         "ROLLOUT_REPLICAS": "3", "VAULT_CACERT": "/ca"})
    assert settings.tls_server_name == "{pod}.vault-internal" and settings.pod_timeout == 600
    assert module.go_duration_seconds("2.85s") == pytest.approx(2.85)
    assert module.go_duration_seconds("1m3.5s") == pytest.approx(63.5)
    assert module.go_duration_seconds("850ms") == pytest.approx(0.85)
    assert module.go_duration_seconds("0s") == 0
    with pytest.raises(ValueError):
        module.go_duration_seconds("soon")


# --- what makes the pods a new revision ------------------------------------------------------------

def _values(stack: str, overrides: dict | None = None, cert: str | None = "CERT"):
    config = load_stack(stack, overrides)
    names = Names.of(config)
    hcl_text = render_server_hcl(names, None, performance_multiplier=config.cluster.raft.performance_multiplier)
    return build_values(config.cluster, names, production=config.is_prod, server_hcl=hcl_text, tls_cert_pem=cert)


def test_a_new_certificate_or_config_changes_the_pod_template():
    values = _values("prod")
    server = values["server"]
    # The chart hashes the config into the pods; the certificate's hash goes next to it.
    assert server["includeConfigAnnotation"] is True
    assert server["annotations"] == {TLS_CERT_ANNOTATION: hashlib.sha256(b"CERT").hexdigest()}
    assert _values("prod", cert="RENEWED")["server"]["annotations"] != server["annotations"]
    assert pod_annotations(None) == {}  # a Secret the stack does not manage: nothing to hash


@pytest.mark.parametrize(("stack", "multiplier"), [("prod", 1), ("dev", 5)])
def test_raft_timing_is_rendered(stack, multiplier):
    raft = hcl.loads(_values(stack)["server"]["ha"]["raft"]["config"])["storage"]["raft"]
    assert raft["performance_multiplier"] == multiplier


# --- the stacks -------------------------------------------------------------------------------------

@pytest.mark.parametrize("stack", ["dev", "prod"])
def test_the_scale_down_runs_before_the_release_and_the_restart_after_vault_is_configured(stack):
    rec = run_stack(stack)
    release = rec.one(RELEASE, "vault-cluster-release")
    scale = rec.one(JOB, "vault-cluster-rollout-scale-down")
    restart = rec.one(JOB, "vault-rollout-restart")
    assert rec.depends_on(release, scale)
    assert scale.get("metadata.name") == f"vault-scale-down-to-{3 if stack == 'dev' else 5}"
    assert rec.by_urn(scale.parent).type == "vault-platform:rollout:RolloutAccess"
    assert rec.by_urn(rec.by_urn(scale.parent).parent).type == "vault-platform:cluster:VaultCluster"
    assert rec.depends_on(restart, release)
    # Its Vault policy is part of the configuration, written first.
    assert rec.depends_on(restart, rec.one("vault:index/policy:Policy", "vault-config-policy-raft-rollout"))
    role = rec.one("vault:kubernetes/authBackendRole:AuthBackendRole", "vault-config-role-raft-rollout")
    assert rec.by_urn(role.parent).type == "vault-platform:configuration:VaultConfiguration"
    assert role.get("roleName") == ROLLOUT_POLICY and role.get("boundServiceAccountNames") == ["vault-rollout"]
    assert role.get("tokenPolicies") == [ROLLOUT_POLICY] and role.get("tokenNoDefaultPolicy") is True
    assert rec.depends_on(restart, role)
    assert restart.get("metadata.name").startswith("vault-rollout-")
    assert canary_leaks(rec) == []


def test_dev_gives_the_restart_the_unseal_keys_only_in_a_secret():
    rec = run_stack("dev")
    secret = rec.one("kubernetes:core/v1:Secret", "vault-rollout-unseal-keys")
    assert secret.get("metadata.name") == "vault-rollout-unseal" and secret.is_secret("stringData")
    # The first key share (threshold 1 in dev), from the bootstrap.
    assert secret.get("stringData")["keys"] == "FAKE-CANARY-SHARE64-0\n"
    assert rec.depends_on(rec.one(JOB, "vault-rollout-restart"), secret)
    assert [r for r in run_stack("prod").resources if r.name == "vault-rollout-unseal-keys"] == []


def test_a_new_image_runs_the_restart_again_and_an_unchanged_stack_does_not():
    name = run_stack("prod").one(JOB, "vault-rollout-restart").get("metadata.name")
    assert run_stack("prod").one(JOB, "vault-rollout-restart").get("metadata.name") == name
    newer = run_stack("prod", {"cluster": {"image": {"tag": "2.0.5"}}}).one(JOB, "vault-rollout-restart")
    assert newer.get("metadata.name") != name


def test_the_rollout_can_be_turned_off():
    rec = run_stack("prod", {"cluster": {"rollout": {"enabled": False}}})
    assert rec.of_type(JOB) == []
    assert not [p for p in rec.of_type("vault:index/policy:Policy") if p.get("name") == ROLLOUT_POLICY]
    assert not [r for r in rec.of_type("vault:kubernetes/authBackendRole:AuthBackendRole")
                if r.get("roleName") == ROLLOUT_POLICY]
