"""The transition store: its config rules, the IAM document and the ClusterSecretStore as pure
builders, and what the prod program declares with it under Pulumi's mocks."""

from __future__ import annotations

import json

import pytest

from components.model import ConfigError
from components.render import aws_secret_store as store
from components.render.aws_secret_store import AwsSecretStore
from components.render.iam import account_and_partition
from tests.facts import custom_resource_problems
from tests.harness import canary_leaks, load_stack, run_stack

COMPONENT = "vault-platform:aws_secret_store:AwsSecretsManagerStore"
STORE = "kubernetes:external-secrets.io/v1:ClusterSecretStore"
ROLE = "aws:iam/role:Role"
ROLE_POLICY = "aws:iam/rolePolicy:RolePolicy"
OIDC = "oidc.eks.eu-west-1.amazonaws.com/id/EXAMPLED539D4633E53DE1B71EXAMPLE"
ENABLED = {"migration": {"awsSecretsManager": {"enabled": True, "namePrefix": "prod/"}}}


def _store(**settings) -> AwsSecretStore:
    config = load_stack("prod", {"migration": {"awsSecretsManager": {"enabled": True, "namePrefix": "prod/",
                                                                       **settings}}})
    assert config.aws is not None
    return AwsSecretStore(config.migration.aws_secrets_manager, config.aws)


# --- config -------------------------------------------------------------------------------------------

def test_the_store_is_off_by_default_and_neither_stack_declares_it():
    for stack in ("dev", "prod"):
        assert load_stack(stack).migration.aws_secrets_manager.enabled is False
        assert run_stack(stack).of_type(COMPONENT) == []


@pytest.mark.parametrize(("stack", "settings", "key", "fragment"), [
    ("dev", {"enabled": True, "namePrefix": "app/"}, "migration.awsSecretsManager.enabled", "needs the aws section"),
    ("prod", {"enabled": True}, "migration.awsSecretsManager.namePrefix", "is required when the store is enabled"),
    ("prod", {"enabled": True, "namePrefix": "prod/*"}, "migration.awsSecretsManager.namePrefix", "no wildcards"),
    ("prod", {"enabled": True, "namePrefix": "p", "region": "Europe"}, "migration.awsSecretsManager.region",
     "is not an AWS region"),
    ("prod", {"enabled": True, "namePrefix": "p", "namespaces": ["Team_A"]}, "migration.awsSecretsManager.namespaces",
     "is not a DNS label"),
    ("prod", {"enabled": True, "namePrefix": "p", "namespaces": ["a", "a"]}, "migration.awsSecretsManager.namespaces",
     "'a' appears more than once"),
    ("prod", {"enabled": True, "namePrefix": "p", "kmsKeyArns": ["alias/mine"]},
     "migration.awsSecretsManager.kmsKeyArns", "is not a KMS key ARN"),
    ("prod", {"enabled": True, "namePrefix": "p", "serviceAccount": {"name": "*"}},
     "migration.awsSecretsManager.serviceAccount.name", "not a wildcard"),
    ("prod", {"enabeld": True}, "migration.awsSecretsManager.enabeld", "did you mean 'enabled'"),
])
def test_bad_store_settings_stop_the_program_naming_the_key(stack, settings, key, fragment):
    with pytest.raises(ConfigError) as err:
        load_stack(stack, {"migration": {"awsSecretsManager": settings}})
    message = str(err.value)
    assert f"vault-platform:{key}" in message and fragment in message, message


def test_the_program_refuses_the_store_in_a_stack_without_aws_before_declaring_anything():
    rec = run_stack("dev", {"migration": {"awsSecretsManager": {"enabled": True, "namePrefix": "app/"}}},
                    expect_error=True)
    assert "migration.awsSecretsManager.enabled" in (rec.error or "")
    assert rec.resources == []


# --- pure builders --------------------------------------------------------------------------------------

def test_the_role_may_read_only_secrets_under_the_prefix_and_list_secrets():
    s = _store()
    assert s.secret_arn_prefix == "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/"
    policy = store.read_policy(s)
    assert policy["Version"] == "2012-10-17"
    statements = {st["Sid"]: st for st in policy["Statement"]}
    assert set(statements) == {"ReadSecretsUnderPrefix", "ListSecrets"}
    read = statements["ReadSecretsUnderPrefix"]
    assert read == {"Sid": "ReadSecretsUnderPrefix", "Effect": "Allow",
                    "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
                    "Resource": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:prod/*"}
    assert statements["ListSecrets"]["Action"] == "secretsmanager:ListSecrets"
    assert statements["ListSecrets"]["Resource"] == "*"
    # Nothing that writes, deletes or changes a secret or its policy.
    actions = [a for st in policy["Statement"] for a in ([st["Action"]] if isinstance(st["Action"], str)
                                                          else st["Action"])]
    assert all(a.split(":")[1].startswith(("Get", "Describe", "List")) for a in actions)


def test_customer_managed_keys_may_decrypt_only_on_secrets_managers_behalf():
    key = "arn:aws:kms:eu-central-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
    s = _store(region="eu-central-1", kmsKeyArns=[key])
    decrypt = next(st for st in store.read_policy(s)["Statement"] if st["Sid"] == "DecryptThroughSecretsManager")
    assert decrypt["Action"] == "kms:Decrypt" and decrypt["Resource"] == [key]
    assert decrypt["Condition"] == {"StringEquals": {"kms:ViaService": "secretsmanager.eu-central-1.amazonaws.com"}}
    # The store's own region wins over the cluster's.
    assert s.secret_arn_prefix.startswith("arn:aws:secretsmanager:eu-central-1:")


def test_the_partition_and_account_come_from_the_clusters_oidc_provider():
    assert account_and_partition(f"arn:aws-cn:iam::210987654321:oidc-provider/{OIDC}") == ("210987654321", "aws-cn")
    with pytest.raises(ValueError, match="not an ARN"):
        account_and_partition("oidc-provider/x")


def test_the_cluster_secret_store_is_valid_for_the_operators_crd():
    manifest = store.cluster_secret_store(_store(namespaces=["payments", "orders"]))
    assert custom_resource_problems(manifest) == []
    aws = manifest["spec"]["provider"]["aws"]
    assert manifest["apiVersion"] == "external-secrets.io/v1" and manifest["kind"] == "ClusterSecretStore"
    assert aws["service"] == "SecretsManager" and aws["region"] == "eu-west-1"
    assert aws["auth"] == {"jwt": {"serviceAccountRef": {"name": "external-secrets", "namespace": "external-secrets"}}}
    assert manifest["spec"]["conditions"] == [{"namespaces": ["payments", "orders"]}]
    assert "conditions" not in store.cluster_secret_store(_store())["spec"]


def test_the_crd_check_would_catch_a_misspelled_field():
    manifest = store.cluster_secret_store(_store())
    manifest["spec"]["provider"]["aws"]["serviceAcount"] = {"name": "x"}
    manifest["spec"]["provider"]["aws"]["service"] = "SecretManager"
    problems = custom_resource_problems(manifest)
    assert any("serviceAcount" in p for p in problems) and any("SecretManager" in p for p in problems)


# --- the program ------------------------------------------------------------------------------------------

ESO = {"namespace": "eso", "serviceAccount": "eso-controller"}
RELEASE = "kubernetes:helm.sh/v3:Release"


@pytest.fixture(scope="module")
def prod():
    return run_stack("prod", {"externalSecrets": ESO, "migration": {"awsSecretsManager": {
        "enabled": True, "namePrefix": "prod/", "namespaces": ["default"],
        "serviceAccount": {"namespace": "eso", "name": "eso-controller"}}}})


def test_the_installed_operator_carries_the_role_and_may_request_only_its_own_tokens(prod):
    release = prod.one(RELEASE, "vault-external-secrets-release")
    role_arn = "arn:aws:iam::123456789012:role/vault-eso-secretsmanager-prod"
    assert release.get("values.serviceAccount") == {"create": True, "name": "eso-controller",
                                                    "annotations": {"eks.amazonaws.com/role-arn": role_arn}}
    role = prod.one("kubernetes:rbac.authorization.k8s.io/v1:Role", "vault-external-secrets-operator-role")
    assert role.get("metadata.namespace") == "eso"
    assert role.get("rules") == [{"apiGroups": [""], "resources": ["serviceaccounts/token"],
                                  "resourceNames": ["eso-controller"], "verbs": ["create"]}]
    binding = prod.one("kubernetes:rbac.authorization.k8s.io/v1:RoleBinding",
                       "vault-external-secrets-operator-rolebinding")
    assert binding.get("subjects") == [{"kind": "ServiceAccount", "name": "eso-controller", "namespace": "eso"}]
    # The store is created once the operator (and its CRDs) is installed.
    assert prod.depends_on(prod.one(STORE), release)


def test_the_store_alone_installs_the_operator():
    # (No application delivers through the operator: its refresh interval would have no effect.)
    rec = run_stack("prod", {"applications": [], "certManager": None, "externalSecrets": {"refreshInterval": None},
                             **ENABLED})
    release = rec.one(RELEASE, "vault-external-secrets-release")
    assert "eks.amazonaws.com/role-arn" in release.get("values.serviceAccount.annotations")
    assert rec.depends_on(rec.one(STORE), release)


def test_the_store_must_log_in_as_the_operator_the_stack_installs():
    with pytest.raises(ConfigError) as err:
        load_stack("prod", {"migration": {"awsSecretsManager": {
            "enabled": True, "namePrefix": "prod/", "serviceAccount": {"namespace": "eso", "name": "x"}}}})
    assert "vault-platform:migration.awsSecretsManager.serviceAccount: is eso/x" in str(err.value)
    # With an operator of your own, the store names its service account and nothing is installed for it.
    config = load_stack("prod", {"externalSecrets": {"install": False}, "migration": {"awsSecretsManager": {
        "enabled": True, "namePrefix": "prod/", "serviceAccount": {"namespace": "eso", "name": "x"}}}})
    assert config.migration.aws_secrets_manager.service_account.name == "x"


def test_one_component_parents_the_role_its_policy_and_the_store(prod):
    component = prod.one(COMPONENT)
    assert any(a.type == "vault-platform:index:VaultPlatform" for a in prod.ancestors(component))
    children = [r for r in prod.resources if r.parent == component.urn]
    assert sorted(r.type for r in children) == sorted([ROLE, ROLE_POLICY, STORE])


def test_the_role_trusts_exactly_the_operators_service_account(prod):
    role = next(r for r in prod.of_type(ROLE) if r.parent == prod.one(COMPONENT).urn)
    trust = json.loads(role.get("assumeRolePolicy"))
    statement = trust["Statement"][0]
    assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
    assert statement["Principal"]["Federated"].endswith(f"oidc-provider/{OIDC}")
    assert statement["Condition"]["StringEquals"] == {f"{OIDC}:sub": "system:serviceaccount:eso:eso-controller",
                                                      f"{OIDC}:aud": "sts.amazonaws.com"}
    assert role.get("name") == "vault-eso-secretsmanager-prod"
    policy = next(r for r in prod.of_type(ROLE_POLICY) if r.parent == prod.one(COMPONENT).urn)
    assert json.loads(policy.get("policy")) == store.read_policy(_store())


def test_the_store_goes_through_the_kubernetes_provider_after_the_role_and_is_valid(prod):
    manifest_store = prod.one(STORE)
    assert prod.provider_of(manifest_store).type == "pulumi:providers:kubernetes"
    role = next(r for r in prod.of_type(ROLE) if r.parent == prod.one(COMPONENT).urn)
    assert prod.depends_on(manifest_store, role)
    assert custom_resource_problems(manifest_store.inputs) == []
    assert manifest_store.get("spec.provider.aws.auth.jwt.serviceAccountRef") == {"name": "eso-controller",
                                                                                  "namespace": "eso"}
    assert manifest_store.get("spec.conditions") == [{"namespaces": ["default"]}]


def test_the_stack_exports_the_store_and_the_role_for_the_operators_service_account(prod):
    assert prod.exports["awsSecretsManagerStore"] == "aws-secrets-manager"
    assert "awsSecretsManagerRoleArn" in prod.exports
    assert canary_leaks(prod) == []


def test_turning_the_store_on_changes_no_other_resource():
    before = {r.urn for r in run_stack("prod").resources}
    after = {r.urn for r in run_stack("prod", ENABLED).resources}
    assert before <= after
    assert {r.rsplit("::", 1)[1] for r in after - before} == {
        "vault-aws-secret-store", "vault-aws-secret-store-irsa", "vault-aws-secret-store-read",
        "vault-aws-secret-store-store", "vault-external-secrets-operator-role",
        "vault-external-secrets-operator-rolebinding"}
