"""AutoUnseal: what lets Vault pods unseal themselves (an AWS KMS key or another Vault's transit)."""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.config import PlatformConfig
from components.helm_values import UnsealWiring
from components.iam import kms_unseal_policy
from components.irsa import irsa_role
from components.names import Names
from components.server_hcl import SealStanza, seal_for


class AutoUnseal(pulumi.ComponentResource):
    """Outputs: ``seal`` (the stanza, or None for shamir), ``wiring`` (pod annotations and env)."""

    seal: pulumi.Output[SealStanza | None]
    wiring: pulumi.Output[UnsealWiring]

    def __init__(self, name: str, config: PlatformConfig, namespace: pulumi.Input[str],
                 aws_provider: aws.Provider | None = None, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vault-platform:unseal:AutoUnseal", name, None, opts)
        names = Names.of(config)
        mode = config.unseal.type
        self.kms_key: aws.kms.Key | None = None
        self.role: aws.iam.Role | None = None
        outputs: dict[str, pulumi.Input] = {"type": mode}

        if mode == "awskms":
            assert config.aws is not None and aws_provider is not None
            aws_opts = pulumi.ResourceOptions(parent=self, provider=aws_provider)
            stack = pulumi.get_stack()
            tags = {**dict(config.aws.tags), "vault-platform/stack": stack}
            # Losing this key loses every secret in Vault: it outlives the stack and cannot be
            # deleted by `pulumi destroy` (protect) nor by removing it from the program (retain).
            self.kms_key = aws.kms.Key(
                f"{name}-key",
                description=f"Vault auto-unseal key ({pulumi.get_project()}/{stack})",
                key_usage="ENCRYPT_DECRYPT",
                customer_master_key_spec="SYMMETRIC_DEFAULT",
                enable_key_rotation=True,
                deletion_window_in_days=config.unseal.awskms.deletion_window_days,
                tags=tags,
                opts=pulumi.ResourceOptions(parent=self, provider=aws_provider, protect=True, retain_on_delete=True),
            )
            alias = config.unseal.awskms.alias or f"vault-unseal-{pulumi.get_project()}-{stack}"
            aws.kms.Alias(f"{name}-alias", name=f"alias/{alias}", target_key_id=self.kms_key.key_id, opts=aws_opts)
            self.role = irsa_role(
                name, config=config, role_name=f"{names.release}-unseal-{stack}",
                description="Vault server pods: use the auto-unseal KMS key (IRSA)",
                service_account=names.service_account, policy_name=f"{name}-kms",
                policy=self.kms_key.arn.apply(kms_unseal_policy), tags=tags, opts=aws_opts)
            self.seal = self.kms_key.key_id.apply(lambda key_id: seal_for(config, key_id))
            self.wiring = self.role.arn.apply(
                lambda arn: UnsealWiring(service_account_annotations={"eks.amazonaws.com/role-arn": arn}))
            outputs.update({"kms_key_id": self.kms_key.key_id, "kms_key_arn": self.kms_key.arn,
                            "role_arn": self.role.arn})
        elif mode == "transit":
            token = config.secrets.transit_unseal_token
            assert token is not None and config.unseal.transit is not None
            secret = k8s.core.v1.Secret(
                f"{name}-transit",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=names.unseal_secret, namespace=namespace),
                type="Opaque",
                string_data={"VAULT_TOKEN": token.output(),
                             "transit-ca.crt": config.unseal.transit.ca_cert},
                opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["stringData", "data"]),
            )
            self.seal = pulumi.Output.from_input(seal_for(config))
            self.wiring = secret.metadata.name.apply(lambda secret_name: UnsealWiring(
                secret_env=[{"envName": "VAULT_TOKEN", "secretName": secret_name, "secretKey": "VAULT_TOKEN"}],
                secret_volume=secret_name if config.unseal.transit.ca_cert else None))
        else:
            self.seal = pulumi.Output.from_input(None)
            self.wiring = pulumi.Output.from_input(UnsealWiring())
        self.register_outputs(outputs)
