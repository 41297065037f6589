"""IAM policy documents for IRSA roles. Pure: plain dicts, serialized by the components."""

from __future__ import annotations

from typing import Any

KEY_ADMINISTRATION = [
    "kms:Create*", "kms:Describe*", "kms:Enable*", "kms:List*", "kms:Put*", "kms:Update*", "kms:Revoke*",
    "kms:Disable*", "kms:Get*", "kms:Delete*", "kms:TagResource", "kms:UntagResource", "kms:ScheduleKeyDeletion",
    "kms:CancelKeyDeletion", "kms:RotateKeyOnDemand",
]
UNSEAL_KEY_USE = ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"]
SNAPSHOT_KEY_USE = ["kms:GenerateDataKey", "kms:Decrypt"]


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
                   via_service: str | None = None) -> dict[str, Any]:
    """An explicit key policy instead of AWS's default (which lets any principal of the account with
    IAM permissions use the key): named administrators manage the key and cannot use it; only
    ``users`` may use it, for ``actions``, and only through ``via_service`` when given."""
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
            use,
        ],
    }


# What the role that runs `pulumi up` for a stack needs, per AWS resource type the program declares.
# Reads are included: `pulumi refresh` and every update read the resource first.
DEPLOYER_ACTIONS: dict[str, list[str]] = {
    "aws:kms/key:Key": ["kms:CreateKey", "kms:DescribeKey", "kms:GetKeyPolicy", "kms:PutKeyPolicy",
                        "kms:GetKeyRotationStatus", "kms:EnableKeyRotation", "kms:ListResourceTags",
                        "kms:TagResource", "kms:UntagResource", "kms:UpdateKeyDescription"],
    "aws:kms/alias:Alias": ["kms:CreateAlias", "kms:ListAliases", "kms:UpdateAlias", "kms:DeleteAlias"],
    "aws:iam/role:Role": ["iam:CreateRole", "iam:GetRole", "iam:TagRole", "iam:UntagRole", "iam:UpdateRole",
                          "iam:UpdateRoleDescription", "iam:UpdateAssumeRolePolicy", "iam:PutRolePermissionsBoundary",
                          "iam:DeleteRolePermissionsBoundary", "iam:ListRolePolicies",
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


def deployer_policy(resource_types: list[str]) -> dict[str, Any]:
    """The IAM policy the deploying role needs for a stack that declares ``resource_types``, plus
    reading the EKS cluster for its kubeconfig."""
    missing = sorted(t for t in resource_types if t not in DEPLOYER_ACTIONS)
    if missing:
        raise ValueError(f"no deployer permissions known for {missing}")
    actions = sorted({a for t in resource_types for a in DEPLOYER_ACTIONS[t]} | {"eks:DescribeCluster"})
    return {"Version": "2012-10-17", "Statement": [
        {"Sid": "DeployVaultPlatform", "Effect": "Allow", "Action": actions, "Resource": "*"}]}
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
