"""VaultPlatform: the whole stack, wired in the order Vault needs it."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.cluster import VaultCluster
from components.config import PlatformConfig


class VaultPlatform(pulumi.ComponentResource):
    exports: dict[str, pulumi.Input]

    def __init__(self, name: str, config: PlatformConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vault-platform:index:VaultPlatform", name, None, opts)
        self.k8s_provider = k8s.Provider(
            "k8s",
            context=config.kubernetes.context or None,
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.aws_provider: aws.Provider | None = None
        if config.aws is not None:
            self.aws_provider = aws.Provider(
                "aws", region=config.aws.region,
                default_tags=aws.ProviderDefaultTagsArgs(tags={**dict(config.aws.tags), "managed-by": "pulumi"}),
                opts=pulumi.ResourceOptions(parent=self))
        providers = [p for p in (self.k8s_provider, self.aws_provider) if p is not None]
        child = pulumi.ResourceOptions(parent=self, providers=providers)

        self.cluster = VaultCluster(f"{name}-cluster", config, self.aws_provider, opts=child)

        self.exports = {
            "namespace": self.cluster.namespace,
            "apiAddress": self.cluster.api_address,
            "caCertificate": self.cluster.ca_cert_pem,
        }
        if self.cluster.unseal.kms_key is not None:
            self.exports["unsealKmsKeyArn"] = self.cluster.unseal.kms_key.arn
        self.register_outputs({})
