"""The stack's KMS keys carry explicit key policies: named administrators manage them, only the
role that needs a key uses it. AWS's default policy would let any principal of the account with
kms:Decrypt on * (and read on the bucket) restore a snapshot into its own Vault."""

from __future__ import annotations

import json

import pytest

from components.render.iam import KEY_ADMINISTRATION, SNAPSHOT_KEY_USE, UNSEAL_KEY_USE, kms_key_policy
from tests.harness import load_stack, run_stack

UNSEAL_KEY = "vault-cluster-unseal-key"
BACKUP_KEY = "vault-backup-key"


def _policy(rec, key_name: str) -> dict:
    return json.loads(rec.one("aws:kms/key:Key", key_name).get("policy"))


def _statement(policy: dict, sid: str) -> dict:
    (found,) = [s for s in policy["Statement"] if s["Sid"] == sid]
    return found


@pytest.mark.parametrize(("key_name", "role_name", "actions"), [
    (UNSEAL_KEY, "vault-cluster-unseal-irsa", UNSEAL_KEY_USE),
    (BACKUP_KEY, "vault-backup-irsa", SNAPSHOT_KEY_USE),
])
def test_each_key_is_administered_by_named_roles_and_used_by_its_own_role(key_name, role_name, actions):
    rec = run_stack("prod")
    config = load_stack("prod")
    policy = _policy(rec, key_name)
    admin = _statement(policy, "KeyAdministration")
    assert admin["Principal"] == {"AWS": sorted(config.aws.key_administrators)}
    assert admin["Action"] == KEY_ADMINISTRATION
    assert not {"kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey", "kms:*", "kms:CreateGrant",
                "kms:PutKeyPolicy"} & set(admin["Action"])
    assert not any(a.endswith("*") for a in admin["Action"])
    policy_admin = _statement(policy, "KeyPolicyAdministration")
    assert policy_admin["Principal"] == {"AWS": sorted(config.aws.key_policy_administrators)}
    use = _statement(policy, "KeyUse")
    role = rec.one("aws:iam/role:Role", role_name)
    role_arn = f"arn:aws:iam::123456789012:role/{role.get('name')}"
    assert role_arn in use["Principal"]["AWS"]
    assert use["Action"] == actions
    # Nobody else: not the account root (which would hand the key to IAM policies), no wildcard.
    principals = [p for s in policy["Statement"] for p in s["Principal"]["AWS"]]
    assert not any(p.endswith(":root") or p == "*" for p in principals)
    # The key waits for the role it names.
    assert rec.depends_on(rec.one("aws:kms/key:Key", key_name), role)


def test_snapshot_key_is_used_through_s3_only_and_by_the_readers():
    rec = run_stack("prod")
    config = load_stack("prod")
    use = _statement(_policy(rec, BACKUP_KEY), "KeyUse")
    assert use["Condition"] == {"StringEquals": {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}}
    assert set(config.aws.snapshot_readers) <= set(use["Principal"]["AWS"])
    unseal_use = _statement(_policy(rec, UNSEAL_KEY), "KeyUse")
    assert "Condition" not in unseal_use
    assert not set(config.aws.snapshot_readers) & set(unseal_use["Principal"]["AWS"])


def test_roles_get_the_permissions_boundary():
    boundary = "arn:aws:iam::123456789012:policy/platform-boundary"
    rec = run_stack("prod", {"aws": {"permissionsBoundary": boundary}})
    roles = rec.of_type("aws:iam/role:Role")
    assert len(roles) == 2 and all(r.get("permissionsBoundary") == boundary for r in roles)
    prod = load_stack("prod").aws.permissions_boundary
    assert prod and all(r.get("permissionsBoundary") == prod for r in run_stack("prod").of_type("aws:iam/role:Role"))


def test_a_stack_that_makes_keys_must_name_their_administrators():
    rec = run_stack("prod", {"aws": {"keyAdministrators": None}}, expect_error=True)
    assert "vault-platform:aws.keyAdministrators: is required" in rec.error
    assert [r for r in rec.resources if r.type != "pulumi:pulumi:Stack"] == []


@pytest.mark.parametrize("arn", ["arn:aws:sts::123456789012:assumed-role/deployer/ci", "deployer",
                                 "arn:aws:iam::123456789012:root"])
def test_key_administrators_are_role_or_user_arns(arn):
    rec = run_stack("prod", {"aws": {"keyAdministrators": [arn]}}, expect_error=True)
    assert "vault-platform:aws.keyAdministrators" in rec.error and "is not an IAM role or user ARN" in rec.error


def test_a_key_policy_needs_an_administrator_and_a_user():
    with pytest.raises(ValueError):
        kms_key_policy([], ["arn:aws:iam::123456789012:role/x"], UNSEAL_KEY_USE)
    with pytest.raises(ValueError):
        kms_key_policy(["arn:aws:iam::123456789012:role/x"], [], UNSEAL_KEY_USE)
