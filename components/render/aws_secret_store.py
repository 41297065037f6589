"""The transition store: an External Secrets Operator ClusterSecretStore for AWS Secrets Manager,
and what its IRSA role may do. Pure: plain dicts from the typed config.

While applications move to Vault, their ExternalSecrets can point at this store or at Vault's; the
store authenticates as the operator's own service account, whose ``eks.amazonaws.com/role-arn``
annotation names the role the stack creates (the operator's installation sets it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from components.model import AwsConfig, AwsSecretsManagerStoreConfig
from components.render import iam
from components.render.labels import platform_labels

API_VERSION = "external-secrets.io/v1"
KIND = "ClusterSecretStore"


@dataclass(frozen=True)
class AwsSecretStore:
    """Everything the store and its role are built from. The store reads only secrets under a name
    prefix, which must be set (migration.awsSecretsManager.namePrefix)."""

    store: AwsSecretsManagerStoreConfig
    aws: AwsConfig

    @property
    def account(self) -> iam.AwsAccount:
        """The account its role is made in."""
        return iam.AwsAccount.of(self.aws)

    @property
    def region(self) -> str:
        return self.store.region or self.aws.region

    @property
    def name_prefix(self) -> str:
        assert self.store.name_prefix
        return self.store.name_prefix

    @property
    def secret_arn_prefix(self) -> str:
        account, partition = iam.account_and_partition(self.aws.oidc_provider_arn)
        return iam.secrets_manager_arn_prefix(partition, self.region, account, self.name_prefix)

    def role_name(self, release: str, stack: str) -> str:
        # IAM role names are at most 64 characters.
        return f"{release}-eso-secretsmanager-{stack}"[:64]

    def role_arn(self, release: str, stack: str) -> str:
        """The role's ARN, known before it exists: the operator's service account is annotated with it
        when the stack installs the operator, which must run before the store can be created."""
        account, partition = iam.account_and_partition(self.aws.oidc_provider_arn)
        return f"arn:{partition}:iam::{account}:role/{self.role_name(release, stack)}"


def read_policy(s: AwsSecretStore) -> dict[str, Any]:
    return iam.secrets_manager_read_policy(s.secret_arn_prefix, s.region, tuple(s.store.kms_key_arns))


def cluster_secret_store(s: AwsSecretStore) -> dict[str, Any]:
    sa = s.store.service_account
    spec: dict[str, Any] = {
        "provider": {"aws": {
            "service": "SecretsManager",
            "region": s.region,
            "auth": {"jwt": {"serviceAccountRef": {"name": sa.name, "namespace": sa.namespace}}},
        }},
    }
    if s.store.namespaces:
        spec["conditions"] = [{"namespaces": list(s.store.namespaces)}]
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "metadata": {
            "name": s.store.store_name,
            "labels": platform_labels(name=s.store.store_name, component="transition-secret-store"),
        },
        "spec": spec,
    }
