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
