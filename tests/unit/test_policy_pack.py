"""The guardrails policy pack (policy/): both stacks pass every policy, and each policy fires on a
deliberately bad variant with a message naming the resource and the property.

Bad variants come from the stack config where the program accepts the bad setting; where the
program refuses it (a test shows it does), from a copy of a recorded resource changed by hand, which
is what a later code change or another team's program could register. The pack itself is proved
twice more: policy/__main__.py builds the real pulumi_policy analyzer (tests/harness/policy_pack.py),
and `python -m pulumi.policy` serves it over gRPC as the engine runs it.
"""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import grpc
import jsonschema
import pytest
import yaml
from google.protobuf import empty_pb2
from pulumi.runtime.proto import analyzer_pb2, analyzer_pb2_grpc

from policy import rules
from tests.harness import CANARY, ROOT, load_stack_file, run_stack
from tests.harness.fakes import fake_pgp_key
from tests.harness.policy_pack import (
    ENVIRONMENTS,
    POLICY,
    analyze_all,
    analyze_request,
    config_file,
    configure_request,
    enforcement,
    load_analyzer,
    resources_of,
    settings,
    violations,
)

RELEASE = "kubernetes:helm.sh/v3:Release"
RELEASE_NAME = "vault-cluster-release"
NAMES = [r.name for r in rules.RULES]
# prod's transit seal: the token in a Secret of the operator's (prod refuses it in the config).
TRANSIT = {"unseal": {"type": "transit", "awskms": None, "transit": {"address": "https://transit.example.com:8200",
                                                     "keyName": "autounseal", "tokenSecret": "vault-unseal-token"}}}
TRANSIT_TOKEN: dict | None = None


def changed(resources: list[rules.Resource], typ: str, name: str, change: Callable[[dict], Any] | None = None,
            **options: Any) -> list[rules.Resource]:
    """The stack with one resource's properties (and options) changed on a copy."""
    out, hits = [], 0
    for r in resources:
        if r.type == typ and r.name == name:
            hits += 1
            props = copy.deepcopy(dict(r.props))
            if change is not None:
                change(props)
            r = dataclasses.replace(r, props=props, options=dataclasses.replace(r.options, **options))
        out.append(r)
    assert hits == 1, f"{typ} {name} is not in the stack"
    return out


def without(resources: list[rules.Resource], typ: str) -> list[rules.Resource]:
    assert any(r.type == typ for r in resources), typ
    return [r for r in resources if r.type != typ]


def stack(name: str, overrides: dict | None = None, secrets: dict | None = None) -> list[rules.Resource]:
    return resources_of(run_stack(name, overrides, secrets))


def values(change: Callable[[dict], Any]) -> Callable[[dict], Any]:
    return lambda props: change(props["values"])


def hcl(edit: Callable[[str], str]) -> Callable[[dict], Any]:
    def change(props: dict) -> None:
        raft = props["values"]["server"]["ha"]["raft"]
        raft["config"] = edit(raft["config"])
    return change


def fired(found: list[rules.Violation], typ: str, name: str, prop: str) -> rules.Violation:
    """The violation of one resource and property, whose message names both."""
    matching = [v for v in found if (v.resource_type, v.resource_name) == (typ, name) and prop in v.property]
    assert matching, f"no violation of {typ} {name} {prop}; found: {[str(v) for v in found]}"
    text = str(matching[0])
    assert typ in text and name in text and prop in text
    return matching[0]


# --- the pack's files ----------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_each_environment_file_configures_every_policy_and_nothing_else(env):
    config = config_file(env)
    assert sorted(config) == sorted(NAMES)
    expected = "mandatory" if env == "prod" else "advisory"
    assert {name: enforcement(env, name) for name in NAMES} == dict.fromkeys(NAMES, expected)
    for name in NAMES:
        schema = {"type": "object", "properties": dict(rules.rule(name).config_schema), "additionalProperties": False}
        jsonschema.validate(settings(env, name), schema)


def test_prod_requires_five_replicas_and_no_node_port_while_dev_allows_its_kind_node_port():
    assert settings("prod", "vault-raft-replicas") == {"requiredReplicas": 5}
    assert settings("dev", "vault-raft-replicas") == {}
    assert settings("prod", "vault-api-not-internet-facing") == {"allowNodePort": False}
    assert settings("dev", "vault-api-not-internet-facing") == {"allowNodePort": True}


def test_policy_names_and_descriptions_are_unique():
    assert len(set(NAMES)) == len(NAMES) == 15
    assert len({r.description for r in rules.RULES}) == len(NAMES)


def test_the_pack_runs_from_its_own_venv_with_exact_pins():
    project = (POLICY / "PulumiPolicy.yaml").read_text()
    assert "name: python" in project and "virtualenv: venv" in project
    pins = [line for line in (POLICY / "requirements.txt").read_text().splitlines() if line and line[0] != "#"]
    assert all("==" in line for line in pins)
    versions = {line.split("==")[0].lower().replace("_", "-"): line.split("==")[1] for line in pins}
    dev = (ROOT / "requirements-dev.txt").read_text() + (ROOT / "requirements.txt").read_text()
    for package in ("pulumi-policy", "pulumi", "protobuf", "grpcio"):
        assert any(line.lower().replace("_", "-") == f"{package}=={versions[package]}" for line in dev.splitlines()), \
            f"{package} differs between policy/requirements.txt and the test venv"


@pytest.mark.parametrize(("workflow", "job", "env"), [("preview", "dev", "dev"), ("preview", "prod", "prod"),
                                                     ("deploy", "prod", "prod")])
def test_the_workflows_run_the_pack_with_the_environments_config(workflow, job, env):
    steps = yaml.safe_load((ROOT / f".github/workflows/{workflow}.yml").read_text())["jobs"][job]["steps"]
    action = next(i for i, s in enumerate(steps) if s.get("uses", "").startswith("pulumi/actions@"))
    assert steps[action]["with"]["policyPacks"] == "policy"
    assert steps[action]["with"]["policyPackConfigs"] == f"policy/config/{env}.json"
    installs = " ".join(s.get("run", "") for s in steps[:action])
    assert "policy/venv/bin/pip install --require-hashes --no-deps -r policy/requirements.lock.txt" in installs


@pytest.mark.parametrize(("stack_name", "env"), [("dev", "dev"), ("prod", "prod"), ("staging", "prod")])
def test_make_up_and_preview_run_the_pack(stack_name, env):
    """`make up` (what the deploy workflow's dev job runs) and `make preview` pass the pack; a stack
    without its own config file gets prod's."""
    for target in ("up", "preview"):
        plan = subprocess.run(["make", "-n", target, f"STACK={stack_name}"], cwd=ROOT, capture_output=True,
                              text=True, check=True, timeout=60).stdout
        (command,) = [line for line in plan.splitlines() if line.startswith(f"pulumi {target} ")]
        assert command.endswith(f" --policy-pack policy --policy-pack-config policy/config/{env}.json")
    deploy = yaml.safe_load((ROOT / ".github/workflows/deploy.yml").read_text())
    assert any(s.get("run", "").startswith("make up") for s in deploy["jobs"]["dev"]["steps"])


# --- both stacks pass --------------------------------------------------------------------------


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_every_policy_passes_what_each_stack_registers(env):
    resources = stack(env)
    found = [v for name in NAMES for v in violations(name, resources, env)]
    assert [str(v) for v in found] == []


def test_prod_also_passes_the_policies_with_a_transit_seal():
    resources = stack("prod", TRANSIT, TRANSIT_TOKEN)
    assert [str(v) for name in NAMES for v in violations(name, resources, "prod")] == []


@pytest.fixture(scope="module")
def analyzers() -> dict[str, Any]:
    """The real analyzer policy/__main__.py builds, configured once per environment file."""
    built = {}
    for env in ENVIRONMENTS:
        analyzer = load_analyzer()
        analyzer.Configure(configure_request(env), None)
        built[env] = analyzer
    return built


def test_main_builds_every_rule_as_a_real_policy(analyzers):
    info = analyzers["prod"].GetAnalyzerInfo(empty_pb2.Empty(), None)
    assert info.name == "vault-platform-guardrails" and info.supportsConfig
    by_name = {p.name: p for p in info.policies}
    assert list(by_name) == NAMES
    for r in rules.RULES:
        policy = by_name[r.name]
        assert policy.description == r.description
        # A run without a config file enforces every policy.
        assert policy.enforcementLevel == analyzer_pb2.MANDATORY
        assert policy.policy_type == (analyzer_pb2.POLICY_TYPE_STACK if r.stack else analyzer_pb2.POLICY_TYPE_RESOURCE)
        assert set(policy.configSchema.properties) == set(r.config_schema)


@pytest.mark.parametrize("env", ENVIRONMENTS)
def test_the_real_pack_reports_nothing_for_either_stack(analyzers, env):
    diagnostics = analyze_all(analyzers[env], stack(env))
    assert [d.message for d in diagnostics] == []


@pytest.mark.parametrize(("env", "level"), [("prod", analyzer_pb2.MANDATORY), ("dev", analyzer_pb2.ADVISORY)])
def test_the_real_pack_blocks_in_prod_and_warns_in_dev(analyzers, env, level):
    resources = changed(stack("prod"), "aws:kms/key:Key", "vault-cluster-unseal-key", protect=False)
    diagnostics = analyze_all(analyzers[env], resources)
    assert [(d.policyName, d.enforcementLevel) for d in diagnostics] == [("kms-key-safeguards", level)]
    assert "vault-cluster-unseal-key: protect is not set" in diagnostics[0].message
    # Stack policies report through the same configuration.
    resources = without(stack("prod"), "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
    diagnostics = analyze_all(analyzers[env], resources)
    assert [(d.policyName, d.enforcementLevel) for d in diagnostics] == [("snapshot-bucket-locked-down", level)]
    assert diagnostics[0].urn == next(r.urn for r in resources if r.name == "vault-backup-bucket")


def test_a_value_unknown_in_a_preview_is_left_to_the_update(analyzers):
    """In a first prod preview the chart values wait for the KMS key: the release's policies judge
    nothing yet, and other properties of a resource are still judged."""
    resources = changed(stack("prod"), RELEASE, RELEASE_NAME, lambda p: p.update(values=rules.UNKNOWN))
    resources = changed(resources, "aws:kms/key:Key", "vault-backup-key",
                        lambda p: p.update(policy=rules.UNKNOWN, enableKeyRotation=False))
    diagnostics = analyze_all(analyzers["prod"], resources)
    assert [d.message.split("\n")[-1] for d in diagnostics] == [
        "aws:kms/key:Key vault-backup-key: enableKeyRotation is not true: the key material is never rotated"]


def test_python_m_pulumi_policy_serves_the_pack_over_grpc():
    """As the engine starts a Python pack: `python -m pulumi.policy <engine> <pack folder>` prints the
    port of its analyzer, which answers over gRPC."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PULUMI_")}
    proc = subprocess.Popen([sys.executable, "-u", "-m", "pulumi.policy", "127.0.0.1:1", str(POLICY)], cwd=POLICY,
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline().strip()
        assert line.isdigit(), f"the pack printed no port: {line!r} {proc.stderr.read() if not line else ''}"
        port = int(line)
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
            analyzer = analyzer_pb2_grpc.AnalyzerStub(channel)
            info = analyzer.GetAnalyzerInfo(empty_pb2.Empty(), timeout=30)
            assert [p.name for p in info.policies] == NAMES
            analyzer.Configure(configure_request("prod"), timeout=30)
            (key,) = [r for r in stack("prod") if r.name == "vault-cluster-unseal-key"]
            key = dataclasses.replace(key, props={**key.props, "enableKeyRotation": False})
            response = analyzer.Analyze(analyze_request(key), timeout=30)
        assert [(d.policyName, d.enforcementLevel) for d in response.diagnostics] == [
            ("kms-key-safeguards", analyzer_pb2.MANDATORY)]
        assert "vault-cluster-unseal-key: enableKeyRotation is not true" in response.diagnostics[0].message
    finally:
        proc.kill()
        proc.communicate(timeout=30)


# --- 1. vault-api-not-internet-facing ------------------------------------------------------------


def test_an_api_load_balancer_that_is_not_internal_fires():
    # The program itself refuses this unless the exposure is declared intended; the pack still fires.
    resources = stack("prod", {"api": {"internalLoadBalancer": False, "publicExposureIntended": True}})
    found = violations("vault-api-not-internet-facing", resources, "prod")
    fired(found, "kubernetes:core/v1:Service", "vault-cluster-api", "metadata.annotations")


def test_an_explicitly_internet_facing_scheme_fires_despite_other_annotations():
    resources = changed(stack("prod"), "kubernetes:core/v1:Service", "vault-cluster-api", lambda p: p["metadata"][
        "annotations"].update({"service.beta.kubernetes.io/aws-load-balancer-scheme": "internet-facing"}))
    fired(violations("vault-api-not-internet-facing", resources), "kubernetes:core/v1:Service", "vault-cluster-api",
          "metadata.annotations")


def test_node_ports_fire_where_the_environment_does_not_allow_them():
    dev = stack("dev")
    assert violations("vault-api-not-internet-facing", dev, "dev") == []
    found = violations("vault-api-not-internet-facing", dev, "prod")
    for name in ("vault-cluster-api", "vault-cluster-pod-0", "vault-cluster-pod-2"):
        fired(found, "kubernetes:core/v1:Service", name, "spec.type")


def test_chart_services_and_external_ips_fire():
    resources = changed(stack("prod"), RELEASE, RELEASE_NAME, values(lambda v: v["ui"].update(
        serviceType="LoadBalancer")))
    fired(violations("vault-api-not-internet-facing", resources), RELEASE, RELEASE_NAME, "values.ui.annotations")
    resources = changed(stack("prod"), "kubernetes:core/v1:Service", "vault-cluster-api",
                        lambda p: p["spec"].update(externalIPs=["203.0.113.10"]))
    fired(violations("vault-api-not-internet-facing", resources), "kubernetes:core/v1:Service", "vault-cluster-api",
          "spec.externalIPs")


# --- 2. vault-tls-everywhere ---------------------------------------------------------------------

TLS_BREAKS = {
    "values.global.tlsDisable": values(lambda v: v["global"].update(tlsDisable=True)),
    "values.server.ha.raft.config listener \"tcp\" tls_disable":
        hcl(lambda text: text.replace('tls_min_version = "tls12"', 'tls_min_version = "tls12"\n  tls_disable = 1')),
    "values.server.ha.raft.config listener \"tcp\" tls_key_file":
        hcl(lambda text: text.replace('  tls_key_file = "/vault/userconfig/vault-tls/tls.key"\n', "")),
    "values.server.ha.raft.config storage retry_join leader_api_addr":
        hcl(lambda text: text.replace("https://vault-2.", "http://vault-2.")),
    "values.server.ha.raft.config api_addr": hcl(lambda text: 'api_addr = "http://vault:8200"\n' + text),
    "values.server.dev.enabled": values(lambda v: v["server"].update(dev={"enabled": True})),
}


@pytest.mark.parametrize("prop", list(TLS_BREAKS))
def test_turning_tls_off_anywhere_fires(prop):
    resources = changed(stack("prod"), RELEASE, RELEASE_NAME, TLS_BREAKS[prop])
    fired(violations("vault-tls-everywhere", resources), RELEASE, RELEASE_NAME, prop)


def test_a_second_listener_without_tls_is_not_hidden_by_the_first():
    second = '\nlistener "tcp" {\n  address = "[::]:8300"\n  tls_disable = "true"\n}\n'
    resources = changed(stack("prod"), RELEASE, RELEASE_NAME, hcl(lambda text: text + second))
    found = violations("vault-tls-everywhere", resources)
    fired(found, RELEASE, RELEASE_NAME, 'listener "tcp" tls_disable')


def test_the_charts_insecure_defaults_fire():
    """Leaving global.tlsDisable or the server config out gets the chart's plain-HTTP defaults."""
    def defaults(v: dict) -> None:
        del v["global"]["tlsDisable"]
        del v["server"]["ha"]["raft"]["config"]
    found = violations("vault-tls-everywhere", changed(stack("dev"), RELEASE, RELEASE_NAME, values(defaults)), "dev")
    fired(found, RELEASE, RELEASE_NAME, "values.global.tlsDisable")
    fired(found, RELEASE, RELEASE_NAME, "values.server.ha.raft.config")


# --- 3. kms-key-safeguards -----------------------------------------------------------------------

KMS_BREAKS = {
    "enableKeyRotation": ({"enableKeyRotation": False}, {}),
    "policy": ({"policy": None}, {}),
    "protect": ({}, {"protect": False}),
    "retainOnDelete": ({}, {"retain_on_delete": False}),
}


@pytest.mark.parametrize("key", ["vault-cluster-unseal-key", "vault-backup-key"])
@pytest.mark.parametrize("prop", list(KMS_BREAKS))
def test_an_unsafe_kms_key_fires(key, prop):
    props, options = KMS_BREAKS[prop]
    resources = changed(stack("prod"), "aws:kms/key:Key", key, lambda p: p.update(props), **options)
    assert [v.property for v in violations("kms-key-safeguards", resources)] == [prop]


def test_a_key_policy_open_to_everyone_fires():
    everyone = json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"}, "Action": "kms:*",
                                          "Resource": "*"}]})
    resources = changed(stack("prod"), "aws:kms/key:Key", "vault-cluster-unseal-key",
                        lambda p: p.update(policy=everyone))
    assert "every principal" in fired(violations("kms-key-safeguards", resources), "aws:kms/key:Key",
                                      "vault-cluster-unseal-key", "policy").message


# --- 4. snapshot-bucket-locked-down --------------------------------------------------------------

BUCKET = ("aws:s3/bucket:Bucket", "vault-backup-bucket")


@pytest.mark.parametrize(("guard", "prop"), [
    ("aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "public access block"),
    ("aws:s3/bucketPolicy:BucketPolicy", "bucket policy"),
    ("aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration",
     "server-side encryption"),
])
def test_a_bucket_without_one_of_its_guards_fires(guard, prop):
    fired(violations("snapshot-bucket-locked-down", without(stack("prod"), guard)), *BUCKET, prop)


def test_weakened_bucket_guards_fire():
    base = stack("prod")
    found = violations("snapshot-bucket-locked-down", changed(
        base, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock", "vault-backup-public-access",
        lambda p: p.update(blockPublicPolicy=False)))
    assert "vault-backup-bucket" in fired(found, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock",
                                          "vault-backup-public-access", "blockPublicPolicy").message
    allow_all = json.dumps({"Statement": [{"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::1:root"},
                                           "Action": "s3:GetObject", "Resource": "*"}]})
    found = violations("snapshot-bucket-locked-down", changed(
        base, "aws:s3/bucketPolicy:BucketPolicy", "vault-backup-bucket-policy", lambda p: p.update(policy=allow_all)))
    fired(found, "aws:s3/bucketPolicy:BucketPolicy", "vault-backup-bucket-policy", "policy")
    kind = "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration"
    found = violations("snapshot-bucket-locked-down", changed(
        base, kind, "vault-backup-encryption",
        lambda p: p["rules"][0].update(applyServerSideEncryptionByDefault={"sseAlgorithm": "AES256"})))
    fired(found, kind, "vault-backup-encryption", "applyServerSideEncryptionByDefault")
    found = violations("snapshot-bucket-locked-down", changed(base, *BUCKET, lambda p: p.update(acl="public-read")))
    fired(found, *BUCKET, "acl")


def test_guards_of_another_bucket_do_not_count():
    """A second bucket whose name the guards do not carry gets no credit for the first one's."""
    other = rules.Resource("aws:s3/bucket:Bucket", "other-bucket", {"bucket": "other-bucket"}, urn="urn:other")
    resources = [*stack("prod"), other]
    found = violations("snapshot-bucket-locked-down", resources)
    assert {v.property for v in found if v.resource_name == "other-bucket"} == {
        "public access block", "bucket policy", "server-side encryption"}
    assert not [v for v in found if v.resource_name != "other-bucket"]


# --- 5. vault-raft-replicas ----------------------------------------------------------------------


def test_one_replica_in_dev_fires_though_the_program_allows_it():
    resources = stack("dev", {"cluster": {"replicas": 1}})
    assert "is 1" in fired(violations("vault-raft-replicas", resources, "dev"), RELEASE, RELEASE_NAME,
                           "values.server.ha.replicas").message


def test_three_replicas_pass_in_dev_and_fire_in_prod():
    resources = stack("prod", {"cluster": {"replicas": 3}})
    assert violations("vault-raft-replicas", resources, "dev") == []
    assert "requires 5" in fired(violations("vault-raft-replicas", resources, "prod"), RELEASE, RELEASE_NAME,
                                 "values.server.ha.replicas").message


def test_an_even_count_fires_which_the_program_refuses_anyway():
    assert "cluster.replicas" in run_stack("dev", {"cluster": {"replicas": 4}}, expect_error=True).error
    resources = changed(stack("dev"), RELEASE, RELEASE_NAME, values(lambda v: v["server"]["ha"].update(replicas=4)))
    assert "odd" in fired(violations("vault-raft-replicas", resources, "dev"), RELEASE, RELEASE_NAME,
                          "values.server.ha.replicas").message


def test_a_single_server_without_ha_fires():
    resources = changed(stack("prod"), RELEASE, RELEASE_NAME, values(lambda v: v["server"]["ha"].update(
        enabled=False)))
    fired(violations("vault-raft-replicas", resources), RELEASE, RELEASE_NAME, "values.server.ha.enabled")


# --- 6. vault-server-resources -------------------------------------------------------------------


@pytest.mark.parametrize(("part", "key"), [("server", "limits.memory"), ("server", "requests.cpu"),
                                           ("injector", "requests.memory")])
def test_a_missing_resource_setting_fires(part, key):
    section, field = key.split(".")
    resources = changed(stack("prod"), RELEASE, RELEASE_NAME,
                        values(lambda v: v[part]["resources"][section].pop(field)))
    fired(violations("vault-server-resources", resources), RELEASE, RELEASE_NAME, f"values.{part}.resources.{key}")


def test_the_injectors_resources_only_matter_when_it_runs():
    def no_injector(v: dict) -> None:
        v["injector"] = {"enabled": False}
    resources = changed(stack("prod"), RELEASE, RELEASE_NAME, values(no_injector))
    assert violations("vault-server-resources", resources) == []


# --- 7. images-pinned ----------------------------------------------------------------------------


def test_a_latest_vault_image_fires_which_the_program_refuses_anyway():
    assert "cluster.image.tag" in run_stack("prod", {"cluster": {"image": {"tag": "latest"}}}, expect_error=True).error
    resources = changed(stack("prod"), RELEASE, RELEASE_NAME,
                        values(lambda v: v["server"]["image"].update(tag="latest")))
    assert "'latest'" in fired(violations("images-pinned", resources), RELEASE, RELEASE_NAME,
                               "values.server.image.tag").message


def test_an_unset_server_tag_and_untagged_workload_images_fire():
    resources = changed(stack("prod"), RELEASE, RELEASE_NAME, values(lambda v: v["server"]["image"].pop("tag")))
    fired(violations("images-pinned", resources), RELEASE, RELEASE_NAME, "values.server.image.tag")
    spec = "spec.jobTemplate.spec.template.spec"
    resources = changed(stack("prod"), "kubernetes:batch/v1:CronJob", "vault-backup-cronjob", lambda p: p["spec"][
        "jobTemplate"]["spec"]["template"]["spec"]["containers"][0].update(image="public.ecr.aws/aws-cli/aws-cli"))
    fired(violations("images-pinned", resources), "kubernetes:batch/v1:CronJob", "vault-backup-cronjob",
          f"{spec}.containers[0].image")
    resources = changed(stack("dev"), "kubernetes:apps/v1:Deployment", "vault-dev-postgres-deployment",
                        lambda p: p["spec"]["template"]["spec"]["containers"][0].update(image="postgres:latest"))
    fired(violations("images-pinned", resources, "dev"), "kubernetes:apps/v1:Deployment",
          "vault-dev-postgres-deployment", "spec.template.spec.containers[0].image")


@pytest.mark.parametrize(("image", "pinned"), [
    ("hashicorp/vault:2.0.4", True), ("registry.example.com:5000/vault:1.2", True),
    ("hashicorp/vault@sha256:" + "a" * 64, True), ("registry.example.com:5000/vault", False),
    ("hashicorp/vault:latest", False), ("hashicorp/vault:stable", False), ("", False),
])
def test_what_counts_as_a_pinned_image(image, pinned):
    assert (rules.image_problem(image) is None) is pinned


# --- 8. no-secret-values-in-plain-objects --------------------------------------------------------

SECRET_VALUE = f"{CANARY}-plain-secret"
CRON = ("kubernetes:batch/v1:CronJob", "vault-backup-cronjob")
JOB_SPEC = "spec.jobTemplate.spec.template.spec"


def _job_spec(props: dict) -> dict:
    return props["spec"]["jobTemplate"]["spec"]["template"]["spec"]


PLAIN_SECRETS = {
    "a ConfigMap": (("kubernetes:core/v1:ConfigMap", "vault-backup-script"), "data['api_token']",
                    lambda p: p["data"].update(api_token=SECRET_VALUE)),
    "a ConfigMap (a PEM key under any name)": (
        ("kubernetes:core/v1:ConfigMap", "vault-backup-script"), "data['settings']",
        lambda p: p["data"].update(settings=f"-----BEGIN EC PRIVATE KEY-----\n{SECRET_VALUE}\n")),
    "an env var": (CRON, f"{JOB_SPEC}.containers[0].env[10].value",
                   lambda p: _job_spec(p)["containers"][0]["env"].append(
                       {"name": "VAULT_TOKEN", "value": SECRET_VALUE})),
    "an init container's env var": (CRON, f"{JOB_SPEC}.initContainers[0].env[7].value",
                                    lambda p: _job_spec(p)["initContainers"][0]["env"].append(
                                        {"name": "AWS_SECRET_ACCESS_KEY", "value": SECRET_VALUE})),
    "an annotation": (("kubernetes:core/v1:ServiceAccount", "vault-backup-sa"),
                      "metadata.annotations['example.com/db-password']",
                      lambda p: p["metadata"]["annotations"].update({"example.com/db-password": SECRET_VALUE})),
    "a pod template annotation": (CRON, "spec.jobTemplate.spec.template.metadata.annotations['clientSecret']",
                                  lambda p: p["spec"]["jobTemplate"]["spec"]["template"]["metadata"][
                                      "annotations"].update(clientSecret=SECRET_VALUE)),
    "the chart's plain env": ((RELEASE, RELEASE_NAME), "values.server.extraEnvironmentVars.DB_PASSWORD",
                              values(lambda v: v["server"]["extraEnvironmentVars"].update(DB_PASSWORD=SECRET_VALUE))),
    "the chart's annotations": ((RELEASE, RELEASE_NAME), "values.server.annotations['api-key']",
                                values(lambda v: v["server"].update(annotations={"api-key": SECRET_VALUE}))),
}


@pytest.mark.parametrize("where", list(PLAIN_SECRETS))
def test_a_secret_like_value_in_plain_objects_fires_without_repeating_it(where):
    (typ, name), prop, change = PLAIN_SECRETS[where]
    resources = changed(stack("prod"), typ, name, change)
    found = violations("no-secret-values-in-plain-objects", resources)
    assert len(found) == 1
    violation = fired(found, typ, name, prop)
    assert violation.property == prop
    assert SECRET_VALUE not in str(violation) and CANARY not in str(violation)


def test_the_programs_own_objects_are_checked_and_pass():
    """The stacks hold ConfigMaps, literal env vars (some named like VAULT_K8S_JWT_PATH: a path, a
    reference), secretKeyRef env vars and annotations: the rule reads them all and fires on none."""
    for env in ENVIRONMENTS:
        resources = stack(env)
        kinds = {r.type for r in resources}
        assert "kubernetes:core/v1:ConfigMap" in kinds
        env_names = [e["name"] for r in resources for _, c in rules.containers(r.props) for e in c.get("env", [])]
        assert "VAULT_K8S_JWT_PATH" in env_names
        assert [r for r in resources if any(rules.get(r.props, p) for p in rules.ANNOTATION_PATHS)]
        assert violations("no-secret-values-in-plain-objects", resources, env) == []
    dev = stack("dev")
    postgres = next(r for r in dev if r.name == "vault-dev-postgres-deployment")
    assert any("secretKeyRef" in e.get("valueFrom", {}) for _, c in rules.containers(postgres.props)
               for e in c["env"])


@pytest.mark.parametrize(("name", "value", "secret"), [
    ("VAULT_TOKEN", "s.abc", True), ("db-password", "x", True), ("clientSecret", "x", True),
    ("api_key", "x", True), ("AWS_SECRET_ACCESS_KEY", "x", True), ("tokenReviewerJwt", "x", True),
    ("credentials", "x", True), ("tls.key", "x", True), ("VAULT_TOKEN", rules.UNKNOWN, True),
    ("secretName", "vault-tls", False), ("token_ttl", "1h", False), ("VAULT_K8S_JWT_PATH", "/var/run/t", False),
    ("password_file", "/etc/pw", False), ("VAULT_TOKEN", "/vault/secrets/token", False), ("AWS_ACCESS_KEY_ID", "x",
                                                                                          False),
    ("kms_key_id", "x", False), ("agent-inject-token", "true", False), ("VAULT_TOKEN", "", False),
])
def test_the_secret_like_rule(name, value, secret):
    assert (rules.secret_like_name(name) and rules.holds_secret_value(value)) is secret


def test_references_to_secrets_do_not_fire():
    pod = {"metadata": {"annotations": {"vault.hashicorp.com/agent-inject-secret-password": "secret/data/app",
                                        "vault.hashicorp.com/agent-inject-token": "true"}},
           "spec": {"containers": [{"name": "app", "image": "app:1.0", "env": [
               {"name": "DB_PASSWORD", "valueFrom": {"secretKeyRef": {"name": "db", "key": "password"}}},
               {"name": "TOKEN_PATH", "value": "/vault/secrets/token"}]}]}}
    assert rules.check_no_plain_secrets("kubernetes:core/v1:Pod", "app", pod, rules.Options(), {}) == []


# --- 9. vault-audit-enabled ----------------------------------------------------------------------


def test_a_vault_left_without_audit_devices_fires():
    """With an encrypted root token and no admin token the program deploys Vault but configures
    nothing: no audit device."""
    resources = stack("dev", {"init": {"rootTokenPgpKey": fake_pgp_key(3)}})
    assert not [r for r in resources if r.type == rules.VAULT_AUDIT]
    fired(violations("vault-audit-enabled", resources, "dev"), RELEASE, RELEASE_NAME, "audit device")


@pytest.mark.parametrize(("option", "value"), [("file_path", "discard"), ("log_raw", "true")])
def test_an_audit_device_that_keeps_nothing_or_logs_raw_secrets_fires(option, value):
    resources = changed(stack("prod"), rules.VAULT_AUDIT, "vault-config-audit-file",
                        lambda p: p["options"].update({option: value}))
    fired(violations("vault-audit-enabled", resources), rules.VAULT_AUDIT, "vault-config-audit-file",
          f"options.{option}")


# --- 10. app-policies-own-paths-only -------------------------------------------------------------


def _with_grant(env: str, grant: dict) -> dict:
    config, _ = load_stack_file(env)
    apps = copy.deepcopy(config["vault-platform:applications"])
    apps[0]["kv"].append(grant)
    return {"applications": apps}


@pytest.mark.parametrize(("grant", "why"), [
    ({"path": "secret/data/otherapp/*", "access": "read"}, "own KV paths"),
    ({"path": "secret/data/*", "access": "read"}, "own KV paths"),
])
def test_an_application_grant_outside_its_paths_fires_though_the_program_allows_it(grant, why):
    resources = stack("dev", _with_grant("dev", grant))
    violation = fired(violations("app-policies-own-paths-only", resources, "dev"), rules.VAULT_POLICY,
                      "vault-config-policy-app-myapp", f"policy path {grant['path']!r}")
    assert why in violation.message


def test_a_grant_on_vaults_own_configuration_fires():
    """The program refuses an application kv grant outside the KV mount; a hand-edited policy can
    still hold one."""
    rec = run_stack("dev", _with_grant("dev", {"path": "sys/policies/acl/*", "access": "write"}), expect_error=True)
    assert "is not under the KV mount" in rec.error
    resources = changed(stack("dev"), rules.VAULT_POLICY, "vault-config-policy-app-myapp", lambda p: p.update(
        policy=p["policy"] + '\npath "sys/policies/acl/*" {\n  capabilities = ["create", "update"]\n}\n'))
    violation = fired(violations("app-policies-own-paths-only", resources, "dev"), rules.VAULT_POLICY,
                      "vault-config-policy-app-myapp", "policy path 'sys/policies/acl/*'")
    assert "Vault's own configuration" in violation.message


def test_a_grant_under_the_applications_namespace_and_service_account_passes():
    resources = stack("dev", _with_grant("dev", {"path": "secret/metadata/default/myapp/extra", "access": "write"}))
    policy = next(r for r in resources if r.name == "vault-config-policy-app-myapp")
    assert '"secret/metadata/default/myapp/extra"' in policy.props["policy"]
    assert violations("app-policies-own-paths-only", resources, "dev") == []


def test_an_application_role_with_a_platform_policy_fires_and_the_backup_role_does_not():
    resources = changed(stack("prod"), rules.KUBERNETES_ROLE, "vault-config-app-myapp",
                        lambda p: p["tokenPolicies"].append("admin"))
    found = violations("app-policies-own-paths-only", resources)
    assert "'admin'" in fired(found, rules.KUBERNETES_ROLE, "vault-config-app-myapp", "tokenPolicies").message
    assert [v.resource_name for v in found] == ["vault-config-app-myapp"]


OPERATOR_ROLES = ("vault-config-role-external-secrets-default", "vault-config-role-cert-manager-default")


def test_the_delivering_operators_roles_pass_with_their_own_policies():
    resources = stack("prod")
    names = {r.name for r in resources if r.type == rules.KUBERNETES_ROLE}
    assert set(OPERATOR_ROLES) <= names
    assert violations("app-policies-own-paths-only", resources) == []


@pytest.mark.parametrize(("policy", "edit", "field"), [
    ("vault-config-policy-external-secrets-default",
     lambda text: text.replace('capabilities = ["read"]', 'capabilities = ["read", "list"]'), "grants ['list']"),
    ("vault-config-policy-external-secrets-default",
     lambda text: text + '\npath "secret/data/*" {\n  capabilities = ["read"]\n}\n', "'secret/data/*'"),
    ("vault-config-policy-cert-manager-default",
     lambda text: text.replace("/sign/", "/issue/"), "not a sign endpoint"),
])
def test_an_operator_policy_that_reaches_further_fires(policy, edit, field):
    resources = changed(stack("prod"), rules.VAULT_POLICY, policy, lambda p: p.update(policy=edit(p["policy"])))
    found = violations("app-policies-own-paths-only", resources)
    assert found and all(v.resource_name == policy for v in found)
    assert any(field in v.message or field in v.property for v in found), found


def test_an_operator_role_with_another_policy_is_an_application_role():
    resources = changed(stack("prod"), rules.KUBERNETES_ROLE, OPERATOR_ROLES[0],
                        lambda p: p["tokenPolicies"].append("admin"))
    found = violations("app-policies-own-paths-only", resources)
    assert "'admin'" in fired(found, rules.KUBERNETES_ROLE, OPERATOR_ROLES[0], "tokenPolicies").message


@pytest.mark.parametrize(("path", "capabilities", "allowed"), [
    ("secret/data/myapp/*", ["read"], True), ("secret/metadata/myapp/*", ["list"], True),
    ("database/creds/myapp-db", ["read"], True), ("pki_int/issue/internal-certs", ["create", "update"], True),
    ("transit/encrypt/myapp", ["update"], True), ("secret/data/anything", ["deny"], True),
    ("secret/data/myapp*", ["read"], False), ("secret/data/myapp/*", ["read", "sudo"], False),
    ("database/creds/*", ["read"], False), ("database/roles/myapp-db", ["update"], False),
    ("auth/kubernetes/role/myapp", ["update"], False), ("+/data/myapp/*", ["read"], False),
])
def test_which_paths_are_an_applications_own(path, capabilities, allowed):
    assert (rules.path_problem(path, capabilities, [["myapp"]]) is None) is allowed


# --- 11. transit-token-from-secret ---------------------------------------------------------------

TRANSIT_BREAKS = {
    "values.server.ha.raft.config seal \"transit\" token":
        hcl(lambda text: text.replace('key_name = "autounseal"', f'key_name = "autounseal"\n  token = "{CANARY}"')),
    "values.server.extraEnvironmentVars.VAULT_TOKEN":
        values(lambda v: v["server"]["extraEnvironmentVars"].update(VAULT_TOKEN=CANARY)),
    "values.server.extraSecretEnvironmentVars": values(lambda v: v["server"].update(extraSecretEnvironmentVars=[])),
}


@pytest.mark.parametrize("prop", list(TRANSIT_BREAKS))
def test_a_transit_token_outside_a_secret_fires(prop):
    resources = changed(stack("prod", TRANSIT, TRANSIT_TOKEN), RELEASE, RELEASE_NAME, TRANSIT_BREAKS[prop])
    violation = fired(violations("transit-token-from-secret", resources), RELEASE, RELEASE_NAME, prop)
    assert CANARY not in str(violation)


def test_a_transit_token_in_a_config_map_fires():
    config = f'seal "transit" {{\n  address = "https://t:8200"\n  token = "{CANARY}"\n}}\n'
    resources = changed(stack("prod"), "kubernetes:core/v1:ConfigMap", "vault-backup-script",
                        lambda p: p["data"].update({"vault.hcl": config}))
    violation = fired(violations("transit-token-from-secret", resources), "kubernetes:core/v1:ConfigMap",
                      "vault-backup-script", "data['vault.hcl']")
    assert CANARY not in str(violation)


# --- the HCL reader ------------------------------------------------------------------------------


def test_the_hcl_reader_keeps_repeated_blocks_comments_aside():
    text = """
    # a comment
    listener "tcp" { address = "a" }  // trailing
    /* block
       comment */
    listener "tcp" {
      address = "b"
      tls_disable = true
      nested = { x = [1, 2.5, "three"] }
    }
    path "secret/*" { capabilities = ["read"] }
    path "secret/*" { capabilities = ["sudo"] }
    template = <<EOT
    not "hcl" {
    EOT
    """
    parsed = rules.parse_hcl(text.replace("\n    ", "\n"))
    listeners = list(rules.blocks(parsed, "listener"))
    assert [(label, rules.attrs(body, "address")) for label, body in listeners] == [("tcp", ["a"]), ("tcp", ["b"])]
    assert rules.attrs(listeners[1][1], "tls_disable") == [True]
    assert rules.policy_rules(text.replace("\n    ", "\n")) == [("secret/*", ["read"]), ("secret/*", ["sudo"])]
    assert rules.attrs(parsed, "template") == ['not "hcl" {\n']


def test_the_hcl_reader_takes_vaults_json_form_and_reports_errors_without_the_text():
    parsed = rules.parse_hcl(json.dumps({"listener": [{"tcp": {"tls_disable": 1}}], "path": {"a/*": {}}}))
    assert [label for label, _ in rules.blocks(parsed, "listener")] == ["tcp"]
    with pytest.raises(rules.HclError) as err:
        rules.parse_hcl(f'seal "transit" {{\n  token = "{CANARY}"\n')
    assert CANARY not in str(err.value)


# --- cluster-secret-store-scoped ----------------------------------------------------------------

STORE_TYPE = "kubernetes:external-secrets.io/v1:ClusterSecretStore"
STORE_NAME = "vault-aws-secret-store-store"
MIGRATING = {"migration": {"awsSecretsManager": {"enabled": True, "namePrefix": "prod/", "namespaces": ["default"]}}}


@pytest.fixture(scope="module")
def migrating() -> list[rules.Resource]:
    return stack("prod", MIGRATING)


def test_the_transition_store_limited_to_namespaces_passes(migrating):
    assert any(r.type == STORE_TYPE for r in migrating)
    assert violations("cluster-secret-store-scoped", migrating) == []


@pytest.mark.parametrize(("conditions", "prop"), [
    (None, "spec.conditions"),
    ([], "spec.conditions"),
    ([{"namespaces": ["default"]}, {"namespaceSelector": {}}], "spec.conditions[1].namespaceSelector"),
    ([{"namespaceRegexes": [".*"]}], "spec.conditions[0].namespaceRegexes"),
])
def test_a_cluster_secret_store_open_to_every_namespace_fires(migrating, conditions, prop):
    """The program refuses a prod store without namespaces; another program may still declare one."""
    def edit(props: dict) -> None:
        if conditions is None:
            del props["spec"]["conditions"]
        else:
            props["spec"]["conditions"] = conditions
    found = violations("cluster-secret-store-scoped", changed(migrating, STORE_TYPE, STORE_NAME, edit))
    assert "every namespace" in fired(found, STORE_TYPE, STORE_NAME, prop).message


def test_a_selector_or_pattern_that_names_namespaces_passes(migrating):
    edit = lambda p: p["spec"].update(conditions=[  # noqa: E731
        {"namespaceSelector": {"matchLabels": {"team": "payments"}}}, {"namespaceRegexes": ["^payments-"]}])
    assert violations("cluster-secret-store-scoped", changed(migrating, STORE_TYPE, STORE_NAME, edit)) == []


# --- certificates-per-namespace -----------------------------------------------------------------

PKI_ROLE = "vault:pkiSecret/secretBackendRole:SecretBackendRole"
PKI_ROLE_NAME = "vault-config-pki-role-internal-certs"
ISSUER = "kubernetes:cert-manager.io/v1:Issuer"


def test_namespace_issuers_and_roles_bound_to_a_namespace_pass():
    resources = stack("prod")
    assert any(r.type == ISSUER for r in resources)
    assert violations("certificates-per-namespace", resources) == []


def test_a_vault_cluster_issuer_fires():
    def cluster_wide(props: dict) -> None:
        del props["metadata"]["namespace"]
    resources = [dataclasses.replace(r, type="kubernetes:cert-manager.io/v1:ClusterIssuer") if r.type == ISSUER else r
                 for r in changed(stack("prod"), ISSUER, "vault-cert-manager-default-issuer", cluster_wide)]
    violation = fired(violations("certificates-per-namespace", resources),
                      "kubernetes:cert-manager.io/v1:ClusterIssuer", "vault-cert-manager-default-issuer", "spec.vault")
    assert "any namespace" in violation.message


@pytest.mark.parametrize(("change", "prop"), [
    (lambda p: p.update(allowedDomains=["internal", "svc.cluster.local"], allowSubdomains=True,
                        allowGlobDomains=False), "allowedDomains[1]"),
    (lambda p: p.update(allowedDomains=["*.svc"], allowGlobDomains=True), "allowedDomains[0]"),
    (lambda p: p.update(allowedDomains=["*.cluster.local"]), "allowedDomains[0]"),
    (lambda p: p.update(allowAnyName=True), "allowAnyName"),
])
def test_a_pki_role_that_signs_every_namespaces_services_fires(change, prop):
    resources = changed(stack("prod"), PKI_ROLE, PKI_ROLE_NAME, change)
    violation = fired(violations("certificates-per-namespace", resources), PKI_ROLE, PKI_ROLE_NAME, prop)
    assert "another namespace's Service" in violation.message


# --- metrics-need-a-token -----------------------------------------------------------------------

OPEN_METRICS = 'values.server.ha.raft.config listener "tcp" telemetry unauthenticated_metrics_access'


def test_a_dev_stack_that_scrapes_without_a_token_fires_which_prod_refuses():
    """The program serves metrics without a token only in a dev stack that scrapes without one (it
    refuses that in prod: tests/unit/test_monitoring.py); with a token nothing fires."""
    found = violations("metrics-need-a-token", stack("dev", {"cluster": {"serviceMonitor": True}}), "dev")
    assert "sys/metrics" in fired(found, RELEASE, RELEASE_NAME, OPEN_METRICS).message
    with_token = stack("dev", {"cluster": {"serviceMonitor": True},
                               "monitoring": {"metricsTokenSecret": "vault-metrics-token"}})
    assert violations("metrics-need-a-token", with_token, "dev") == []


@pytest.mark.parametrize("telemetry", [
    "  telemetry {\n    unauthenticated_metrics_access = true\n  }\n",
    '  telemetry = { unauthenticated_metrics_access = "true" }\n',
])
def test_a_prod_listener_opened_by_hand_fires(telemetry):
    edit = hcl(lambda text: text.replace('tls_min_version = "tls12"\n', f'tls_min_version = "tls12"\n{telemetry}'))
    resources = changed(stack("prod"), RELEASE, RELEASE_NAME, edit)
    fired(violations("metrics-need-a-token", resources), RELEASE, RELEASE_NAME, OPEN_METRICS)


def test_telemetry_that_keeps_the_token_passes():
    edit = hcl(lambda text: text.replace('tls_min_version = "tls12"\n', 'tls_min_version = "tls12"\n  telemetry {\n'
                                         '    unauthenticated_metrics_access = false\n  }\n'))
    assert violations("metrics-need-a-token", changed(stack("prod"), RELEASE, RELEASE_NAME, edit)) == []
    parsed = json.dumps({"listener": [{"tcp": {"telemetry": [{"unauthenticated_metrics_access": True}]}}]})
    found = violations("metrics-need-a-token", changed(stack("prod"), RELEASE, RELEASE_NAME,
                                                       hcl(lambda _: parsed)))
    fired(found, RELEASE, RELEASE_NAME, OPEN_METRICS)


def test_every_policy_is_documented_once_in_the_packs_readme():
    import re

    text = (ROOT / "policy" / "README.md").read_text()
    documented = re.findall(r"^\| `([a-z0-9-]+)`(?: \(stack\))? \|", text, re.M)
    assert sorted(documented) == sorted(r.name for r in rules.RULES)
    for rule in rules.RULES:
        assert (f"`{rule.name}` (stack)" in text) == rule.stack, rule.name


# --- deployer-not-root ---------------------------------------------------------------------------

DEPLOY_IDENTITY = "pulumi-python:dynamic/bootstrap:DeployIdentity"
IDENTITY_NAME = "vault-bootstrap-identity"


def test_the_stacks_deployer_passes():
    resources = stack("prod")
    assert any(r.type == DEPLOY_IDENTITY for r in resources)
    assert violations("deployer-not-root", resources) == []


def test_a_deployer_that_may_give_roles_any_policy_fires():
    """What deploy.limitRolePolicies: false gives: the program allows it (OpenBao needs it), the pack
    refuses it in prod."""
    resources = stack("prod", {"deploy": {"limitRolePolicies": False}})
    violation = fired(violations("deployer-not-root", resources), DEPLOY_IDENTITY, IDENTITY_NAME,
                      'policies.deployer path "auth/kubernetes/role/*" allowed_parameters')
    assert "admin included" in violation.message


@pytest.mark.parametrize("policy", ["deployer", "admin"])
def test_a_deployer_that_may_rewrite_an_identity_policy_fires(policy):
    def writable(props: dict) -> None:
        text = props["policies"]["deployer"]
        rule = f'path "sys/policies/acl/{policy}" {{\n  capabilities = ["read"]\n}}'
        assert rule in text
        props["policies"]["deployer"] = text.replace(rule, rule.replace('["read"]', '["read", "update"]'))
    resources = changed(stack("prod"), DEPLOY_IDENTITY, IDENTITY_NAME, writable)
    violation = fired(violations("deployer-not-root", resources), DEPLOY_IDENTITY, IDENTITY_NAME,
                      f'policies.deployer path "sys/policies/acl/{policy}"')
    assert "make itself root" in violation.message
