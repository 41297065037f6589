"""AwsSecretsManagerStore: the transition store. During a migration to Vault, applications keep
reading their secrets from AWS Secrets Manager through the External Secrets Operator until they
move, one by one, to Vault.

It declares an IRSA role for the operator's service account, allowed only to read the secrets
under one name prefix (and to list secrets), and a ClusterSecretStore that authenticates as that
service account. The operator comes first (VaultPlatform installs it, annotated with this role, unless
externalSecrets.install is false); the store only needs the
``external-secrets.io/v1`` CRDs to exist and the service account to carry the role's ARN.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.render import aws_secret_store
from components.render.aws_secret_store import AwsSecretStore
from components.resources.aws import inline_policy, irsa_role
from components.resources.errors import InvalidInput


@dataclass(frozen=True)
class AwsSecretsManagerStoreArgs:
    # The store and what its role may read (components.render.aws_secret_store.AwsSecretStore).
    store: AwsSecretStore
    # The Vault release name: it prefixes the role's name, like the platform's other roles.
    release: str

    def __post_init__(self) -> None:
        if not self.store.store.name_prefix:
            raise InvalidInput("store.store.name_prefix", "AwsSecretsManagerStore: the store needs a name prefix "
                                                          "(migration.awsSecretsManager.namePrefix)")


class AwsSecretsManagerStore(pulumi.ComponentResource):
    """The transition store: a ClusterSecretStore for AWS Secrets Manager and the IRSA role it reads with."""

    store_name: pulumi.Output[str]
    """The ClusterSecretStore's name."""
    role_arn: pulumi.Output[str]
    """The role's ARN: annotate the operator's service account with it."""
    exports: dict[str, pulumi.Input]
    """Stack exports: the store's name and the role's ARN."""
    role: aws.iam.Role
    """The operator's IRSA role, which may read only the secrets under the name prefix."""
    policy: aws.iam.RolePolicy
    """What the role may read."""
    cluster_secret_store: k8s.apiextensions.CustomResource
    """The ClusterSecretStore."""

    def __init__(self, name: str, args: AwsSecretsManagerStoreArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vault-platform:aws_secret_store:AwsSecretsManagerStore", name, None, opts)
        # The AWS provider comes through opts (providers=[...]), as every provider does.
        aws_provider = self.get_provider("aws:index:Provider")
        if aws_provider is None:
            raise InvalidInput("opts.providers", "AwsSecretsManagerStore needs an AWS provider")
        s = args.store
        sa = s.store.service_account
        stack = pulumi.get_stack()
        account = s.account
        tags = {**dict(account.tags), "vault-platform/stack": stack}
        self.role = irsa_role(
            name, account=account, namespace=sa.namespace, service_account=sa.name,
            role_name=s.role_name(args.release, stack),
            description=f"External Secrets Operator: read Secrets Manager secrets under {s.name_prefix} (IRSA)",
            tags=tags, opts=pulumi.ResourceOptions(parent=self, provider=aws_provider))
        self.policy = inline_policy(f"{name}-read", self.role, aws_secret_store.read_policy(s),
                                    pulumi.ResourceOptions(parent=self, provider=aws_provider))

        manifest = aws_secret_store.cluster_secret_store(s)
        # The store is usable once its role exists; the operator checks it as soon as it appears.
        self.cluster_secret_store = k8s.apiextensions.CustomResource(
            f"{name}-store",
            api_version=manifest["apiVersion"],
            kind=manifest["kind"],
            metadata=manifest["metadata"],
            spec=manifest["spec"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.role, self.policy]),
        )
        self.store_name = pulumi.Output.from_input(s.store.store_name)
        self.role_arn = self.role.arn
        self.exports = {
            "awsSecretsManagerStore": self.store_name,
            "awsSecretsManagerRoleArn": self.role.arn,
        }
        self.register_outputs({"store_name": self.store_name, "role_arn": self.role_arn, **self.exports})
