"""AutoUnseal: what lets Vault pods unseal themselves (an AWS KMS key or another Vault's transit)."""

from __future__ import annotations

from dataclasses import dataclass, field

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.model import AwsConfig, Secret, UnsealConfig
from components.model.names import Names
from components.render.helm_values import UnsealWiring
from components.render.iam import UNSEAL_KEY_USE, kms_key_policy, kms_unseal_policy
from components.render.server_hcl import SealStanza, seal_for
from components.resources.aws import inline_policy, irsa_role, protected_kms_key
from components.resources.errors import InvalidInput
from components.resources.stack_config import secret_output


@dataclass(frozen=True)
class AutoUnsealArgs:
    namespace: pulumi.Input[str]
    names: Names
    unseal: UnsealConfig
    # awskms: where the key lives and the cluster's OIDC provider the IRSA role trusts.
    aws: AwsConfig | None = None
    # transit: the token of the other Vault, kept only in a Secret.
    transit_token: Secret | None = None
    tags: dict[str, str] = field(default_factory=dict)


class AutoUnseal(pulumi.ComponentResource):
    """Outputs: ``seal`` (the stanza, or None for shamir), ``wiring`` (pod annotations and env),
    ``kms_key_arn`` and ``role_arn`` (awskms)."""

    seal: pulumi.Output[SealStanza | None]
    wiring: pulumi.Output[UnsealWiring]

    def __init__(self, name: str, args: AutoUnsealArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vault-platform:unseal:AutoUnseal", name, None, opts)
        # The AWS provider comes through opts (providers=[...]), as every provider does.
        aws_provider = self.get_provider("aws:index:Provider")
        names = args.names
        unseal = args.unseal
        self.kms_key: aws.kms.Key | None = None
        self.role: aws.iam.Role | None = None
        outputs: dict[str, pulumi.Input] = {"type": unseal.type}

        if unseal.type == "awskms":
            if args.aws is None or aws_provider is None:
                raise InvalidInput("unseal.type", "AutoUnseal: awskms needs aws settings and an "
                                                                "AWS provider")
            aws_settings = args.aws
            aws_opts = pulumi.ResourceOptions(parent=self, provider=aws_provider)
            stack = pulumi.get_stack()
            tags = {**args.tags, "vault-platform/stack": stack}
            # The role exists first: the key policy names it as the only user of the key.
            self.role = irsa_role(
                name, aws_config=aws_settings, namespace=names.namespace, service_account=names.service_account,
                role_name=f"{names.release}-unseal-{stack}",
                description="Vault server pods: use the auto-unseal KMS key (IRSA)", tags=tags, opts=aws_opts)
            # Losing this key loses every secret in Vault.
            self.kms_key = protected_kms_key(
                f"{name}-key", alias_resource=f"{name}-alias",
                alias=unseal.awskms.alias or f"vault-unseal-{pulumi.get_project()}-{stack}",
                description=f"Vault auto-unseal key ({pulumi.get_project()}/{stack})",
                deletion_window_days=unseal.awskms.deletion_window_days,
                policy=self.role.arn.apply(lambda arn: kms_key_policy(
                    list(aws_settings.key_administrators), [arn], UNSEAL_KEY_USE,
                    policy_administrators=aws_settings.key_policy_administrators)),
                tags=tags, opts=aws_opts)
            inline_policy(f"{name}-kms", self.role, self.kms_key.arn.apply(kms_unseal_policy), aws_opts)
            self.seal = self.kms_key.key_id.apply(
                lambda key_id: seal_for(unseal, region=aws_settings.region, kms_key_id=key_id))
            self.wiring = self.role.arn.apply(
                lambda arn: UnsealWiring(service_account_annotations={"eks.amazonaws.com/role-arn": arn}))
            outputs.update({"kms_key_id": self.kms_key.key_id, "kms_key_arn": self.kms_key.arn,
                            "role_arn": self.role.arn})
        elif unseal.type == "transit":
            transit = unseal.transit
            if transit is None or (args.transit_token is None and not transit.token_secret):
                raise InvalidInput("unseal.transit", "AutoUnseal: transit needs its settings and a token")
            # The token from the operator's own Secret (it never passes through the stack), or from the
            # config into the stack's Secret (dev).
            data: dict[str, pulumi.Input[str]] = {"transit-ca.crt": transit.ca_cert}
            if not transit.token_secret:
                assert args.transit_token is not None
                data["VAULT_TOKEN"] = secret_output(args.transit_token)
            secret = k8s.core.v1.Secret(
                f"{name}-transit",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=names.unseal_secret, namespace=args.namespace),
                type="Opaque",
                string_data=data,
                opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["stringData", "data"]),
            )
            self.seal = pulumi.Output.from_input(seal_for(unseal))
            token_secret = transit.token_secret
            self.wiring = secret.metadata.name.apply(lambda secret_name: UnsealWiring(
                secret_env=[{"envName": "VAULT_TOKEN", "secretName": token_secret or secret_name,
                             "secretKey": "VAULT_TOKEN"}],
                secret_volume=secret_name if transit.ca_cert else None))
        else:
            self.seal = pulumi.Output.from_input(None)
            self.wiring = pulumi.Output.from_input(UnsealWiring())
        self.kms_key_arn: pulumi.Output[str] | None = self.kms_key.arn if self.kms_key is not None else None
        self.register_outputs(outputs)
