"""An IAM role for a Kubernetes service account (IRSA) with one inline policy.

Shared by the auto-unseal key and the backup job, so both trust exactly one service account the
same way.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from components.config import PlatformConfig
from components.iam import irsa_trust_policy


def irsa_role(name: str, *, config: PlatformConfig, role_name: str, description: str, service_account: str,
              policy_name: str, policy: pulumi.Output[dict[str, Any]], tags: dict[str, str],
              opts: pulumi.ResourceOptions) -> aws.iam.Role:
    """``<name>-irsa`` trusted only by the cluster's OIDC provider for ``service_account`` in the Vault
    namespace, with ``policy`` attached inline as ``<policy_name>``."""
    assert config.aws is not None
    role = aws.iam.Role(
        f"{name}-irsa",
        name=role_name[:64],
        description=description,
        assume_role_policy=json.dumps(irsa_trust_policy(
            config.aws.oidc_provider_arn, config.aws.oidc_issuer, config.kubernetes.namespace, service_account)),
        tags=tags,
        opts=opts,
    )
    aws.iam.RolePolicy(policy_name, role=role.id, policy=policy.apply(json.dumps), opts=opts)
    return role
