"""AWS building blocks shared by the components: a KMS key that outlives the stack, and an IAM
role for exactly one Kubernetes service account (IRSA). One place each, so the auto-unseal key and
the snapshot bucket's key, and the roles of the Vault pods and the backup job, are made the same way.
"""

from __future__ import annotations

import json
from typing import Any

import pulumi
import pulumi_aws as aws

from components.render.iam import AwsAccount, irsa_trust_policy


def protected_kms_key(name: str, *, alias_resource: str, alias: str, description: str, deletion_window_days: int,
                      policy: pulumi.Input[dict[str, Any]], tags: dict[str, str],
                      opts: pulumi.ResourceOptions, region: str | None = None) -> aws.kms.Key:
    """A symmetric key with yearly rotation, an explicit key policy (components.render.iam
    kms_key_policy) and an alias. What it encrypts is unreadable without it, so neither
    `pulumi destroy` (protect) nor removing it from the program (retain) deletes it."""
    key = aws.kms.Key(
        name,
        description=description,
        policy=pulumi.Output.from_input(policy).apply(json.dumps),
        key_usage="ENCRYPT_DECRYPT",
        customer_master_key_spec="SYMMETRIC_DEFAULT",
        enable_key_rotation=True,
        deletion_window_in_days=deletion_window_days,
        # The key policy lets its administrators (the deployer among them) manage the key but not
        # replace the policy, which AWS's lockout check would refuse without this: only
        # aws.keyPolicyAdministrators (break-glass) may replace it.
        bypass_policy_lockout_safety_check=True,
        tags=tags,
        region=region,
        opts=pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(protect=True, retain_on_delete=True)),
    )
    aws.kms.Alias(alias_resource, name=f"alias/{alias}", target_key_id=key.key_id, region=region, opts=opts)
    return key


def irsa_role(name: str, *, account: AwsAccount, namespace: str, service_account: str, role_name: str,
              description: str, tags: dict[str, str], opts: pulumi.ResourceOptions) -> aws.iam.Role:
    """``<name>-irsa``, trusted only by the cluster's OIDC provider for exactly
    ``system:serviceaccount:<namespace>:<service_account>``, within ``aws.permissionsBoundary`` when set.
    It has no permission until ``inline_policy`` gives it one."""
    return aws.iam.Role(
        f"{name}-irsa",
        name=role_name[:64],
        description=description,
        assume_role_policy=json.dumps(irsa_trust_policy(
            account.oidc_provider_arn, account.oidc_issuer, namespace, service_account)),
        permissions_boundary=account.permissions_boundary or None,
        tags=tags,
        opts=opts,
    )


def inline_policy(name: str, role: aws.iam.Role, policy: pulumi.Input[dict[str, Any]],
                  opts: pulumi.ResourceOptions) -> aws.iam.RolePolicy:
    return aws.iam.RolePolicy(name, role=role.id, policy=pulumi.Output.from_input(policy).apply(json.dumps),
                              opts=opts)
