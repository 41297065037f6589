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
