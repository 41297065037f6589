"""IAM policy documents for IRSA roles. Pure: plain dicts, serialized by the components."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from components.model import AwsConfig

# Managing a key without being able to use it or to hand it out: no kms:CreateGrant (a grant can give
# anyone, the grantee included, Decrypt), no kms:PutKeyPolicy (a new policy can give anything), no
# use. Revoking and retiring grants only ever takes access away.
KEY_ADMINISTRATION = [
    "kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListKeyPolicies", "kms:ListGrants",
    "kms:ListResourceTags", "kms:EnableKeyRotation", "kms:DisableKeyRotation", "kms:RotateKeyOnDemand",
    "kms:EnableKey", "kms:DisableKey", "kms:TagResource", "kms:UntagResource", "kms:UpdateKeyDescription",
    "kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias", "kms:RevokeGrant", "kms:RetireGrant",
    "kms:ScheduleKeyDeletion", "kms:CancelKeyDeletion",
]
# Changing the key policy is giving the key to whoever the new policy names: break-glass only.
KEY_POLICY_ADMINISTRATION = ["kms:PutKeyPolicy", "kms:GetKeyPolicy", "kms:DescribeKey"]
UNSEAL_KEY_USE = ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"]
SNAPSHOT_KEY_USE = ["kms:GenerateDataKey", "kms:Decrypt"]


@dataclass(frozen=True)
class AwsAccount:
    """What the stack's AWS resources are made with (the aws section): their ``region`` and ``tags``;
    the cluster's OIDC provider that every IRSA role trusts (``oidc_provider_arn``, ``oidc_issuer``,
    without https://) and the ``permissions_boundary`` of those roles (empty: none); who administers
    the KMS keys (``key_administrators``), who alone may replace their policies
    (``key_policy_administrators``) and who may decrypt snapshots (``snapshot_readers``)."""

    region: str
    oidc_provider_arn: str
    oidc_issuer: str
    tags: Mapping[str, str] = field(default_factory=dict)
    permissions_boundary: str = ""
    key_administrators: tuple[str, ...] = ()
    key_policy_administrators: tuple[str, ...] = ()
    snapshot_readers: tuple[str, ...] = ()

    @classmethod
    def of(cls, aws: AwsConfig) -> AwsAccount:
        return cls(region=aws.region, oidc_provider_arn=aws.oidc_provider_arn, oidc_issuer=aws.oidc_issuer,
                   tags=dict(aws.tags), permissions_boundary=aws.permissions_boundary,
                   key_administrators=tuple(aws.key_administrators),
                   key_policy_administrators=tuple(aws.key_policy_administrators),
                   snapshot_readers=tuple(aws.snapshot_readers))


def irsa_trust_policy(oidc_provider_arn: str, oidc_issuer: str, namespace: str,
                      service_account: str) -> dict[str, Any]:
    """Trust only the cluster's OIDC provider, and only for exactly one service account."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Federated": oidc_provider_arn},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": {"StringEquals": {
                f"{oidc_issuer}:sub": f"system:serviceaccount:{namespace}:{service_account}",
                f"{oidc_issuer}:aud": "sts.amazonaws.com",
            }},
        }],
    }


def kms_unseal_policy(key_arn: str) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "VaultAutoUnseal",
            "Effect": "Allow",
            "Action": UNSEAL_KEY_USE,
            "Resource": key_arn,
        }],
    }


def backup_bucket_policy(bucket_arn: str) -> dict[str, Any]:
    """The snapshot bucket's own policy: refuse every request that does not use TLS."""
    return {
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": [bucket_arn, f"{bucket_arn}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }],
    }


def s3_backup_policy(bucket_arn: str, prefix: str, kms_key_arn: str) -> dict[str, Any]:
    """What the backup job may do: write, read, list and prune snapshots under its prefix only, and
    use the bucket's KMS key for them."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "SnapshotObjects",
                "Effect": "Allow",
                "Action": ["s3:PutObject", "s3:GetObject", "s3:DeleteObject"],
                "Resource": f"{bucket_arn}/{prefix}*",
            },
            {
                "Sid": "ListSnapshotPrefix",
                "Effect": "Allow",
                "Action": "s3:ListBucket",
                "Resource": bucket_arn,
                "Condition": {"StringLike": {"s3:prefix": [f"{prefix}*"]}},
            },
            {
                "Sid": "SnapshotEncryption",
                "Effect": "Allow",
                "Action": SNAPSHOT_KEY_USE,
                "Resource": kms_key_arn,
            },
        ],
    }


def replication_trust_policy() -> dict[str, Any]:
    """Only S3 itself assumes the replication role."""
    return {"Version": "2012-10-17", "Statement": [{
        "Effect": "Allow", "Principal": {"Service": "s3.amazonaws.com"}, "Action": "sts:AssumeRole"}]}


def replication_policy(source_arn: str, prefix: str, source_key_arn: str, source_region: str,
                       replica_arn: str, replica_key_arn: str, replica_region: str) -> dict[str, Any]:
    """What S3 may do to copy snapshots to the replica bucket: read them (and their lock settings)
    under the prefix, decrypt them with the source key, write them encrypted with the replica's key."""
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "ReadSourceConfiguration", "Effect": "Allow",
             "Action": ["s3:GetReplicationConfiguration", "s3:ListBucket"], "Resource": source_arn},
            {"Sid": "ReadSnapshotVersions", "Effect": "Allow",
             "Action": ["s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging",
                        "s3:GetObjectRetention", "s3:GetObjectLegalHold"],
             "Resource": f"{source_arn}/{prefix}*"},
            {"Sid": "WriteReplicas", "Effect": "Allow",
             "Action": ["s3:ReplicateObject", "s3:ReplicateTags", "s3:ObjectOwnerOverrideToBucketOwner"],
             "Resource": f"{replica_arn}/{prefix}*"},
            {"Sid": "DecryptSource", "Effect": "Allow", "Action": ["kms:Decrypt"], "Resource": source_key_arn,
             "Condition": {"StringEquals": {"kms:ViaService": f"s3.{source_region}.amazonaws.com"}}},
            {"Sid": "EncryptReplica", "Effect": "Allow", "Action": ["kms:Encrypt", "kms:GenerateDataKey"],
             "Resource": replica_key_arn,
             "Condition": {"StringEquals": {"kms:ViaService": f"s3.{replica_region}.amazonaws.com"}}},
        ],
    }


def kms_key_policy(administrators: list[str], users: list[str], actions: list[str],
                   via_service: str | None = None, policy_administrators: list[str] | tuple[str, ...] = ()
                   ) -> dict[str, Any]:
    """An explicit key policy instead of AWS's default (which lets any principal of the account with
    IAM permissions use the key): named administrators manage the key and can neither use it nor give
    it to anyone; only ``policy_administrators`` (break-glass) may replace the policy; only ``users``
    may use it, for ``actions``, and only through ``via_service`` when given."""
    if not administrators or not users:
        raise ValueError("a KMS key policy needs at least one administrator and one user")
    use: dict[str, Any] = {
        "Sid": "KeyUse",
        "Effect": "Allow",
        "Principal": {"AWS": sorted(users)},
        "Action": actions,
        "Resource": "*",
    }
    if via_service:
        use["Condition"] = {"StringEquals": {"kms:ViaService": via_service}}
    return {
        "Version": "2012-10-17",
        "Statement": [
            {"Sid": "KeyAdministration", "Effect": "Allow", "Principal": {"AWS": sorted(administrators)},
             "Action": KEY_ADMINISTRATION, "Resource": "*"},
            *([{"Sid": "KeyPolicyAdministration", "Effect": "Allow",
                "Principal": {"AWS": sorted(policy_administrators)}, "Action": KEY_POLICY_ADMINISTRATION,
                "Resource": "*"}] if policy_administrators else []),
            use,
        ],
    }


# What the role that runs `pulumi up` for a stack needs, per AWS resource type the program declares.
# Reads are included: `pulumi refresh` and every update read the resource first. Scoped to the
# stack's own roles, keys, aliases, buckets and zone by deployer_policy; role trust policies and
# permissions boundaries are never the deployer's to change (see DENIED).
DEPLOYER_ACTIONS: dict[str, list[str]] = {
    "aws:kms/key:Key": ["kms:CreateKey", "kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus",
                        "kms:EnableKeyRotation", "kms:ListResourceTags", "kms:TagResource", "kms:UntagResource",
                        "kms:UpdateKeyDescription", "kms:ScheduleKeyDeletion"],
    "aws:kms/alias:Alias": ["kms:CreateAlias", "kms:ListAliases", "kms:UpdateAlias", "kms:DeleteAlias"],
    "aws:iam/role:Role": ["iam:CreateRole", "iam:GetRole", "iam:TagRole", "iam:UntagRole", "iam:UpdateRole",
                          "iam:UpdateRoleDescription", "iam:PutRolePermissionsBoundary", "iam:ListRolePolicies",
                          "iam:ListAttachedRolePolicies", "iam:ListInstanceProfilesForRole", "iam:DeleteRole"],
    "aws:iam/rolePolicy:RolePolicy": ["iam:PutRolePolicy", "iam:GetRolePolicy", "iam:DeleteRolePolicy"],
    "aws:s3/bucket:Bucket": ["s3:CreateBucket", "s3:ListBucket", "s3:GetBucket*", "s3:GetAccelerateConfiguration",
                             "s3:GetLifecycleConfiguration", "s3:GetReplicationConfiguration",
                             "s3:GetEncryptionConfiguration", "s3:PutBucketTagging"],
    "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration": [
        "s3:PutLifecycleConfiguration", "s3:GetLifecycleConfiguration"],
    "aws:s3/bucketOwnershipControls:BucketOwnershipControls": [
        "s3:PutBucketOwnershipControls", "s3:GetBucketOwnershipControls"],
    "aws:s3/bucketPolicy:BucketPolicy": ["s3:PutBucketPolicy", "s3:GetBucketPolicy", "s3:DeleteBucketPolicy"],
    "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock": [
        "s3:PutBucketPublicAccessBlock", "s3:GetBucketPublicAccessBlock"],
    "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration": [
        "s3:PutEncryptionConfiguration", "s3:GetEncryptionConfiguration"],
    "aws:s3/bucketVersioning:BucketVersioning": ["s3:PutBucketVersioning", "s3:GetBucketVersioning"],
    "aws:route53/record:Record": ["route53:ChangeResourceRecordSets", "route53:ListResourceRecordSets",
                                  "route53:GetChange", "route53:GetHostedZone"],
    "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration": [
        "s3:PutBucketObjectLockConfiguration", "s3:GetBucketObjectLockConfiguration"],
    # Handing the replication role to S3 is an iam:PassRole.
    "aws:s3/bucketReplicationConfig:BucketReplicationConfig": [
        "s3:PutReplicationConfiguration", "s3:GetReplicationConfiguration", "iam:PassRole"],
}
# Never the deployer's, whatever else its role is given: a role's trust (a role of the stack holds key
# access; trusting another principal hands that over), its boundary, and the boundary itself.
DENIED_ROLE_CHANGES = ["iam:UpdateAssumeRolePolicy", "iam:DeleteRolePermissionsBoundary"]
DENIED_BOUNDARY_CHANGES = ["iam:CreatePolicyVersion", "iam:DeletePolicyVersion", "iam:SetDefaultPolicyVersion",
                           "iam:DeletePolicy"]
# What any role of the stack ever does (unseal, snapshots, replication, the transition store): the
# permissions boundary's ceiling. Nothing in IAM, STS, or key and bucket administration.
BOUNDARY_ACTIONS = sorted({*UNSEAL_KEY_USE, *SNAPSHOT_KEY_USE, "kms:Encrypt", "s3:PutObject", "s3:GetObject",
                           "s3:DeleteObject", "s3:ListBucket", "s3:GetReplicationConfiguration",
                           "s3:GetObjectVersionForReplication", "s3:GetObjectVersionAcl", "s3:GetObjectVersionTagging",
                           "s3:GetObjectRetention", "s3:GetObjectLegalHold", "s3:ReplicateObject", "s3:ReplicateTags",
                           "s3:ObjectOwnerOverrideToBucketOwner", "secretsmanager:GetSecretValue",
                           "secretsmanager:DescribeSecret", "secretsmanager:ListSecrets"})


def permissions_boundary_policy() -> dict[str, Any]:
    """A permissions boundary for every role the stack creates (aws.permissionsBoundary): a role
    rewritten by whoever deploys can still do no more than the stack's roles do."""
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "VaultPlatformRolesAtMost", "Effect": "Allow", "Action": BOUNDARY_ACTIONS, "Resource": "*"}]}


def _actions(resource_types: list[str], service: str) -> list[str]:
    return sorted({a for t in resource_types for a in DEPLOYER_ACTIONS[t] if a.startswith(service + ":")})


def deployer_policy(resource_types: list[str], *, partition: str, account: str, regions: list[str],
                    role_names: list[str], alias_names: list[str], bucket_names: list[str],
                    permissions_boundary: str, zone_ids: list[str] = (), passed_roles: list[str] = ()
                    ) -> dict[str, Any]:
    """The IAM policy the deploying role needs for a stack that declares ``resource_types``, on the
    stack's own resources only (``bucket_names`` may end in '*', for a name S3 completes), plus reading
    the EKS cluster for its kubeconfig. Roles are created only inside ``permissions_boundary``."""
    missing = sorted(t for t in resource_types if t not in DEPLOYER_ACTIONS)
    if missing:
        raise ValueError(f"no deployer permissions known for {missing}")
    if role_names and not permissions_boundary:
        raise ValueError("the stack creates IAM roles: give it a permissions boundary (aws.permissionsBoundary)")
    iam_arn = f"arn:{partition}:iam::{account}"
    roles = [f"{iam_arn}:role/{name}" for name in sorted(role_names)]
    keys = [f"arn:{partition}:kms:{region}:{account}:key/*" for region in sorted(regions)]
    statements: list[dict[str, Any]] = [
        {"Sid": "ReadTheCluster", "Effect": "Allow", "Action": ["eks:DescribeCluster"], "Resource": "*"}]
    kms = _actions(resource_types, "kms")
    if kms:
        # A new key holds nothing yet; its policy (which names the deployer administrator, not its
        # policy's author) is what guards it from then on. Tags are set in the same call.
        statements.append({"Sid": "CreateKeys", "Effect": "Allow", "Action": ["kms:CreateKey"], "Resource": "*"})
        statements.append({"Sid": "TheStacksKeys", "Effect": "Allow",
                           "Action": [a for a in kms if a not in ("kms:CreateKey", "kms:ListAliases")
                                      and "Alias" not in a], "Resource": keys})
    if "aws:kms/alias:Alias" in resource_types:
        aliases = [f"arn:{partition}:kms:{region}:{account}:alias/{name}" for region in sorted(regions)
                   for name in sorted(alias_names)]
        statements.append({"Sid": "TheStacksAliases", "Effect": "Allow",
                           "Action": ["kms:CreateAlias", "kms:UpdateAlias", "kms:DeleteAlias"],
                           "Resource": [*aliases, *keys]})
        statements.append({"Sid": "ListAliases", "Effect": "Allow", "Action": ["kms:ListAliases"], "Resource": "*"})
    role_actions = [a for a in _actions(resource_types, "iam")
                    if a not in ("iam:CreateRole", "iam:PutRolePermissionsBoundary", "iam:PassRole")]
    if roles:
        statements.append({"Sid": "TheStacksRoles", "Effect": "Allow", "Action": role_actions, "Resource": roles})
        statements.append({"Sid": "CreateRolesInsideTheBoundary", "Effect": "Allow",
                           "Action": ["iam:CreateRole", "iam:PutRolePermissionsBoundary"], "Resource": roles,
                           "Condition": {"StringEquals": {"iam:PermissionsBoundary": permissions_boundary}}})
    if passed_roles:
        statements.append({"Sid": "PassTheReplicationRoleToS3", "Effect": "Allow", "Action": ["iam:PassRole"],
                           "Resource": [f"{iam_arn}:role/{name}" for name in sorted(passed_roles)],
                           "Condition": {"StringEquals": {"iam:PassedToService": "s3.amazonaws.com"}}})
    s3 = _actions(resource_types, "s3")
    if s3:
        statements.append({"Sid": "TheStacksBuckets", "Effect": "Allow", "Action": s3,
                           "Resource": [f"arn:{partition}:s3:::{name}" for name in sorted(bucket_names)]})
    route53 = _actions(resource_types, "route53")
    if route53:
        statements.append({"Sid": "TheStacksRecords", "Effect": "Allow", "Action": route53,
                           "Resource": [*(f"arn:{partition}:route53:::hostedzone/{z}" for z in sorted(zone_ids)),
                                        f"arn:{partition}:route53:::change/*"]})
    statements.append({"Sid": "NeverWidenARole", "Effect": "Deny", "Action": DENIED_ROLE_CHANGES, "Resource": "*"})
    if roles:
        statements.append({"Sid": "NoRoleOutsideTheBoundary", "Effect": "Deny",
                           "Action": ["iam:CreateRole", "iam:PutRolePermissionsBoundary"], "Resource": "*",
                           "Condition": {"StringNotEquals": {"iam:PermissionsBoundary": permissions_boundary}}})
        statements.append({"Sid": "NeverChangeTheBoundary", "Effect": "Deny", "Action": DENIED_BOUNDARY_CHANGES,
                           "Resource": permissions_boundary})
    return {"Version": "2012-10-17", "Statement": statements}


def deployer_policy_for(config: Any, declared: list[tuple[str, str, dict[str, Any]]]) -> dict[str, Any]:
    """deployer_policy for what a stack declared: (type, logical name, inputs) of each AWS resource
    (scripts/deployer_policy.py runs the program under mocks for them)."""
    aws_config = config.aws
    if aws_config is None:
        raise ValueError("the stack declares no AWS resources (no aws section)")
    account, partition = account_and_partition(aws_config.oidc_provider_arn)
    ours = [(t, n, i) for t, n, i in declared if t.startswith("aws:")]
    regions = {aws_config.region, *(i["region"] for _, _, i in ours if i.get("region"))}
    return deployer_policy(
        sorted({t for t, _, _ in ours}), partition=partition, account=account, regions=sorted(regions),
        role_names=[i["name"] for t, _, i in ours if t == "aws:iam/role:Role"],
        alias_names=[i["name"].removeprefix("alias/") for t, _, i in ours if t == "aws:kms/alias:Alias"],
        # An unnamed bucket is named by Pulumi: its logical name and a random suffix.
        bucket_names=[i.get("bucket") or f"{n}-*" for t, n, i in ours if t == "aws:s3/bucket:Bucket"],
        permissions_boundary=aws_config.permissions_boundary,
        zone_ids=[i["zoneId"] for t, _, i in ours if t == "aws:route53/record:Record"],
        passed_roles=[i["name"] for t, n, i in ours if t == "aws:iam/role:Role" and "replication" in n])


def account_and_partition(arn: str) -> tuple[str, str]:
    """(account id, partition) of an ARN such as the cluster's OIDC provider's."""
    parts = arn.split(":")
    if len(parts) < 6 or parts[0] != "arn" or not parts[4].isdigit():
        raise ValueError(f"{arn!r} is not an ARN with an account id")
    return parts[4], parts[1]


def secrets_manager_arn_prefix(partition: str, region: str, account: str, name_prefix: str) -> str:
    """The ARN every secret whose name starts with ``name_prefix`` has, up to the name. Secrets
    Manager appends a random suffix (-AbCdEf) to each name in its ARN, so policies match with '*'."""
    return f"arn:{partition}:secretsmanager:{region}:{account}:secret:{name_prefix}"


def secrets_manager_read_policy(secret_arn_prefix: str, region: str,
                                kms_key_arns: tuple[str, ...] = ()) -> dict[str, Any]:
    """What the transition store may do: read the values and descriptions of the secrets under one
    name prefix, and list secrets (ListSecrets has no resource-level permissions). Keys that encrypt
    the secrets may only decrypt on Secrets Manager's behalf."""
    statements: list[dict[str, Any]] = [
        {
            "Sid": "ReadSecretsUnderPrefix",
            "Effect": "Allow",
            "Action": ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"],
            "Resource": f"{secret_arn_prefix}*",
        },
        {
            "Sid": "ListSecrets",
            "Effect": "Allow",
            "Action": "secretsmanager:ListSecrets",
            "Resource": "*",
        },
    ]
    if kms_key_arns:
        statements.append({
            "Sid": "DecryptThroughSecretsManager",
            "Effect": "Allow",
            "Action": "kms:Decrypt",
            "Resource": list(kms_key_arns),
            "Condition": {"StringEquals": {"kms:ViaService": f"secretsmanager.{region}.amazonaws.com"}},
        })
    return {"Version": "2012-10-17", "Statement": statements}
