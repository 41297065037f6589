"""IAM policy documents for IRSA roles. Pure: plain dicts, serialized by the components."""

from __future__ import annotations

from typing import Any


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
            "Action": ["kms:Encrypt", "kms:Decrypt", "kms:DescribeKey"],
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
                "Action": ["kms:GenerateDataKey", "kms:Decrypt"],
                "Resource": kms_key_arn,
            },
        ],
    }


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
