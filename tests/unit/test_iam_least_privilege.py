"""What the stack's AWS principals can and cannot do, by policy evaluation over the documents the
stack renders: the KMS key policies and the deploying role's IAM policy (with the permissions
boundary every role the stack makes carries). Each escalation a deployer or a key administrator
could try is a row that must be refused; each thing `pulumi up` needs is a row that must be allowed.

The evaluation is tests/harness/iam_eval.py (AWS's documented logic; moto has no policy simulation),
whose rules are pinned first against examples from AWS's documentation.
"""

from __future__ import annotations

import json

import pytest

from components.render import iam
from tests.harness import load_stack, run_stack
from tests.harness.iam_eval import ALLOW, DENY, IMPLICIT_DENY, decide, identity_decision, key_decision

ACCOUNT = "123456789012"
ROLE = f"arn:aws:iam::{ACCOUNT}:role"
DEPLOYER = f"{ROLE}/vault-platform-deployer"
BREAK_GLASS = f"{ROLE}/platform-break-glass"
KEY = f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab"


# --- the evaluation itself ----------------------------------------------------------------------


def _policy(*statements: dict) -> dict:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def test_an_explicit_deny_wins_and_nothing_allowed_is_an_implicit_deny():
    allow = {"Effect": "Allow", "Action": "iam:*", "Resource": "*"}
    deny = {"Effect": "Deny", "Action": "iam:DeleteRole", "Resource": f"{ROLE}/*"}
    assert decide([_policy(allow, deny)], "iam:DeleteRole", f"{ROLE}/x") == DENY
    assert decide([_policy(allow), _policy(deny)], "iam:GetRole", f"{ROLE}/x") == ALLOW
    assert decide([_policy(deny)], "iam:GetRole", f"{ROLE}/x") == IMPLICIT_DENY
    # Actions compare case-insensitively, with wildcards; resources with wildcards.
    assert decide([_policy({**allow, "Action": "IAM:get*"})], "iam:GetRole", "x") == ALLOW
    assert decide([_policy({**allow, "Resource": f"{ROLE}/vault-*"})], "iam:GetRole", f"{ROLE}/other") \
        == IMPLICIT_DENY


def test_a_missing_condition_key_fails_positive_operators_and_passes_negated_ones():
    """AWS: 'If the key that you specify in a policy condition is not present in the request context,
    the values do not match' - except for negated operators, and IfExists."""
    boundary = f"arn:aws:iam::{ACCOUNT}:policy/b"
    allow = {"Effect": "Allow", "Action": "iam:CreateRole", "Resource": "*",
             "Condition": {"StringEquals": {"iam:PermissionsBoundary": boundary}}}
    assert decide([_policy(allow)], "iam:CreateRole", "r", {}) == IMPLICIT_DENY
    assert decide([_policy(allow)], "iam:CreateRole", "r", {"iam:PermissionsBoundary": boundary}) == ALLOW
    deny = {"Effect": "Deny", "Action": "iam:CreateRole", "Resource": "*",
            "Condition": {"StringNotEquals": {"iam:PermissionsBoundary": boundary}}}
    assert decide([_policy(deny)], "iam:CreateRole", "r", {}) == DENY
    assert decide([_policy(deny)], "iam:CreateRole", "r", {"iam:PermissionsBoundary": boundary + "x"}) == DENY
    assert decide([_policy(deny)], "iam:CreateRole", "r", {"iam:PermissionsBoundary": boundary}) == IMPLICIT_DENY
    if_exists = {**allow, "Condition": {"StringEqualsIfExists": {"iam:PermissionsBoundary": boundary}}}
    assert decide([_policy(if_exists)], "iam:CreateRole", "r", {}) == ALLOW


def test_a_boundary_caps_what_the_identity_policy_allows():
    everything = _policy({"Effect": "Allow", "Action": "*", "Resource": "*"})
    boundary = _policy({"Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"})
    assert identity_decision([everything], "s3:GetObject", "arn:aws:s3:::b/k", boundary=boundary) == ALLOW
    assert identity_decision([everything], "iam:CreateUser", "x", boundary=boundary) == IMPLICIT_DENY


def test_a_key_policy_without_the_account_root_is_the_only_authority():
    policy = _policy({"Effect": "Allow", "Principal": {"AWS": [DEPLOYER]}, "Action": ["kms:DescribeKey"],
                      "Resource": "*"})
    assert key_decision(policy, DEPLOYER, "kms:DescribeKey") == ALLOW
    assert key_decision(policy, BREAK_GLASS, "kms:DescribeKey") == IMPLICIT_DENY
    with pytest.raises(AssertionError):
        key_decision(_policy({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
                              "Action": "kms:*", "Resource": "*"}), DEPLOYER, "kms:Decrypt")


# --- KMS key administrators ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def prod():
    return run_stack("prod")


def _key_policy(rec, name: str) -> dict:
    return json.loads(rec.one("aws:kms/key:Key", name).get("policy"))


# What could hand an administrator the key: a grant, a new key policy, or using it outright.
ESCALATIONS = ["kms:CreateGrant", "kms:PutKeyPolicy", "kms:Decrypt", "kms:Encrypt", "kms:ReEncryptFrom",
               "kms:ReEncryptTo", "kms:GenerateDataKey", "kms:GenerateDataKeyWithoutPlaintext"]
ADMINISTRATION = ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:EnableKeyRotation",
                  "kms:ListResourceTags", "kms:TagResource", "kms:UntagResource", "kms:UpdateKeyDescription",
                  "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion", "kms:RevokeGrant", "kms:ListGrants"]


@pytest.mark.parametrize("key", ["vault-cluster-unseal-key", "vault-backup-key"])
@pytest.mark.parametrize("action", ESCALATIONS)
def test_a_key_administrator_cannot_give_itself_the_key(prod, key, action):
    assert key_decision(_key_policy(prod, key), DEPLOYER, action,
                        {"kms:ViaService": "s3.eu-west-1.amazonaws.com"}) != ALLOW


@pytest.mark.parametrize("key", ["vault-cluster-unseal-key", "vault-backup-key"])
@pytest.mark.parametrize("action", ADMINISTRATION)
def test_a_key_administrator_still_manages_the_key(prod, key, action):
    assert key_decision(_key_policy(prod, key), DEPLOYER, action) == ALLOW


@pytest.mark.parametrize("key", ["vault-cluster-unseal-key", "vault-backup-key"])
def test_only_the_key_policy_administrators_change_the_key_policy_and_they_cannot_use_it(prod, key):
    policy = _key_policy(prod, key)
    assert load_stack("prod").aws.key_policy_administrators == (BREAK_GLASS,)
    assert key_decision(policy, BREAK_GLASS, "kms:PutKeyPolicy") == ALLOW
    for action in ("kms:Decrypt", "kms:CreateGrant"):
        assert key_decision(policy, BREAK_GLASS, action) != ALLOW
    # The unseal role uses its key, and nothing else of it.
    unseal = f"{ROLE}/vault-unseal-prod"
    if key == "vault-cluster-unseal-key":
        assert key_decision(policy, unseal, "kms:Decrypt") == ALLOW
        assert key_decision(policy, unseal, "kms:PutKeyPolicy") == IMPLICIT_DENY


def test_the_keys_are_created_past_the_lockout_check_because_the_deployer_may_not_change_their_policy(prod):
    for key in prod.of_type("aws:kms/key:Key"):
        assert key.get("bypassPolicyLockoutSafetyCheck") is True


# --- the deploying role -------------------------------------------------------------------------


@pytest.fixture(scope="module")
def deployer(prod):
    config = load_stack("prod")
    return iam.deployer_policy_for(config, [(r.type, r.name, r.inputs) for r in prod.resources if r.custom])


BOUNDARY = f"arn:aws:iam::{ACCOUNT}:policy/vault-platform-boundary"
OURS = f"{ROLE}/vault-unseal-prod"


@pytest.mark.parametrize(("action", "resource", "context", "expected"), [
    # Rewriting someone else's role, or a role of ours without the boundary, is refused.
    ("iam:PutRolePolicy", f"{ROLE}/admin", {}, IMPLICIT_DENY),
    ("iam:AttachRolePolicy", OURS, {}, IMPLICIT_DENY),
    ("iam:CreateRole", f"{ROLE}/anything", {"iam:PermissionsBoundary": BOUNDARY}, IMPLICIT_DENY),
    ("iam:CreateRole", OURS, {}, DENY),
    ("iam:CreateRole", OURS, {"iam:PermissionsBoundary": f"arn:aws:iam::{ACCOUNT}:policy/AdministratorAccess"},
     DENY),
    ("iam:PutRolePermissionsBoundary", OURS, {"iam:PermissionsBoundary": f"arn:aws:iam::{ACCOUNT}:policy/other"},
     DENY),
    ("iam:DeleteRolePermissionsBoundary", OURS, {}, DENY),
    # Trusting another principal (a GitHub workflow, itself) with a role that holds key access.
    ("iam:UpdateAssumeRolePolicy", OURS, {}, DENY),
    # Widening the boundary itself.
    ("iam:CreatePolicyVersion", BOUNDARY, {}, DENY),
    ("iam:SetDefaultPolicyVersion", BOUNDARY, {}, DENY),
    # Handing a role to a service that would run code with it.
    ("iam:PassRole", OURS, {"iam:PassedToService": "ec2.amazonaws.com"}, IMPLICIT_DENY),
    ("iam:CreateUser", f"arn:aws:iam::{ACCOUNT}:user/x", {}, IMPLICIT_DENY),
    ("sts:AssumeRole", OURS, {}, IMPLICIT_DENY),
    # What `pulumi up` does.
    ("iam:CreateRole", OURS, {"iam:PermissionsBoundary": BOUNDARY}, ALLOW),
    ("iam:PutRolePermissionsBoundary", OURS, {"iam:PermissionsBoundary": BOUNDARY}, ALLOW),
    ("iam:PutRolePolicy", OURS, {}, ALLOW),
    ("iam:GetRole", f"{ROLE}/vault-backup-prod", {}, ALLOW),
    ("iam:DeleteRolePolicy", f"{ROLE}/vault-backup-prod", {}, ALLOW),
    ("kms:CreateKey", "*", {}, ALLOW),
    ("kms:CreateAlias", f"arn:aws:kms:eu-west-1:{ACCOUNT}:alias/vault-unseal-vault-platform-prod", {}, ALLOW),
    ("kms:CreateAlias", f"arn:aws:kms:eu-west-1:{ACCOUNT}:alias/aws/s3", {}, IMPLICIT_DENY),
    ("eks:DescribeCluster", f"arn:aws:eks:eu-west-1:{ACCOUNT}:cluster/prod", {}, ALLOW),
])
def test_the_deployer_policy_refuses_every_escalation_and_allows_the_deploy(deployer, action, resource, context,
                                                                             expected):
    assert identity_decision([deployer], action, resource, context) == expected


def test_the_boundary_keeps_a_role_the_deployer_rewrites_inside_the_stacks_own_work():
    boundary = iam.permissions_boundary_policy()
    everything = _policy({"Effect": "Allow", "Action": "*", "Resource": "*"})
    for action in ("iam:CreateUser", "iam:PutRolePolicy", "sts:AssumeRole", "kms:CreateGrant", "kms:PutKeyPolicy",
                   "ec2:RunInstances", "secretsmanager:PutSecretValue", "s3:PutBucketPolicy"):
        assert identity_decision([everything], action, "*", boundary=boundary) == IMPLICIT_DENY, action
    for action in ("kms:Decrypt", "s3:PutObject", "secretsmanager:GetSecretValue"):
        assert identity_decision([everything], action, "*", boundary=boundary) == ALLOW, action


def test_prod_requires_the_boundary_and_key_policy_administrators_apart_from_the_administrators():
    rec = run_stack("prod", {"aws": {"permissionsBoundary": None}}, expect_error=True)
    assert "vault-platform:aws.permissionsBoundary: is required in prod" in rec.error
    rec = run_stack("prod", {"aws": {"keyPolicyAdministrators": None}}, expect_error=True)
    assert "vault-platform:aws.keyPolicyAdministrators: is required" in rec.error
    rec = run_stack("prod", {"aws": {"keyPolicyAdministrators": [DEPLOYER]}}, expect_error=True)
    assert "vault-platform:aws.keyPolicyAdministrators" in rec.error and "also in aws.keyAdministrators" in rec.error
