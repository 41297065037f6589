"""AutoUnseal: what lets Vault pods unseal themselves (an AWS KMS key or another Vault's transit)."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.model.names import Names
from components.render.helm_values import UnsealWiring
from components.render.iam import UNSEAL_KEY_USE, kms_key_policy, kms_unseal_policy
from components.render.server_hcl import SealStanza
from components.render.unseal import UnsealPlan
from components.resources.aws import inline_policy, irsa_role, protected_kms_key
from components.resources.errors import InvalidInput
from components.resources.manifests import object_name


@dataclass(frozen=True)
class AutoUnsealArgs:
    # The Vault namespace (the resource's name, so the transit Secret waits for it).
    namespace: pulumi.Input[str]
    # The release's names: the server pods' service account the awskms role trusts, the Secret's name.
    names: Names
    # How the pods unseal (components.render.unseal.UnsealPlan.of).
    unseal: UnsealPlan
    # transit: the token of the other Vault (a secret), kept only in a Secret; None with the operator's
    # own Secret (unseal.transit_token_secret).
    transit_token: pulumi.Input[str] | None = None


class AutoUnseal(pulumi.ComponentResource):
    """What lets the pods unseal themselves: awskms, the KMS key and the IRSA role that may use it;
    transit, the Secret with the other Vault's token and CA; shamir, nothing."""

    seal: pulumi.Output[SealStanza | None]
    """The seal stanza for the server HCL (None for shamir)."""
    wiring: pulumi.Output[UnsealWiring]
    """What the unseal mode adds to the pods: service account annotations, secret env, a secret volume."""
    kms_key: aws.kms.Key | None
    """awskms: the unseal key (protected, retained: losing it loses every secret)."""
    kms_key_arn: pulumi.Output[str] | None
    """awskms: the unseal key's ARN."""
    role: aws.iam.Role | None
    """awskms: the IRSA role of the server pods, the key's only user."""

    def __init__(self, name: str, args: AutoUnsealArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vault-platform:unseal:AutoUnseal", name, None, opts)
        # The AWS provider comes through opts (providers=[...]), as every provider does.
        aws_provider = self.get_provider("aws:index:Provider")
        names = args.names
        unseal = args.unseal
        self.kms_key = None
        self.role = None
        outputs: dict[str, pulumi.Input] = {"type": unseal.type}

        if unseal.type == "awskms":
            if unseal.aws is None or aws_provider is None:
                raise InvalidInput("unseal.aws", "AutoUnseal: awskms needs aws settings and an AWS provider")
            account = unseal.aws
            aws_opts = pulumi.ResourceOptions(parent=self, provider=aws_provider)
            stack = pulumi.get_stack()
            tags = {**account.tags, "vault-platform/stack": stack}
            # The role exists first: the key policy names it as the only user of the key.
            self.role = irsa_role(
                name, account=account, namespace=names.namespace, service_account=names.service_account,
                role_name=f"{names.release}-unseal-{stack}",
                description="Vault server pods: use the auto-unseal KMS key (IRSA)", tags=tags, opts=aws_opts)
            # Losing this key loses every secret in Vault.
            self.kms_key = protected_kms_key(
                f"{name}-key", alias_resource=f"{name}-alias",
                alias=unseal.kms_alias or f"vault-unseal-{pulumi.get_project()}-{stack}",
                description=f"Vault auto-unseal key ({pulumi.get_project()}/{stack})",
                deletion_window_days=unseal.kms_deletion_window_days,
                policy=self.role.arn.apply(lambda arn: kms_key_policy(
                    list(account.key_administrators), [arn], UNSEAL_KEY_USE,
                    policy_administrators=account.key_policy_administrators)),
                tags=tags, opts=aws_opts)
            inline_policy(f"{name}-kms", self.role, self.kms_key.arn.apply(kms_unseal_policy), aws_opts)
            self.seal = self.kms_key.key_id.apply(unseal.kms_seal)
            self.wiring = self.role.arn.apply(
                lambda arn: UnsealWiring(service_account_annotations={"eks.amazonaws.com/role-arn": arn}))
            outputs.update({"kms_key_id": self.kms_key.key_id, "kms_key_arn": self.kms_key.arn,
                            "role_arn": self.role.arn})
        elif unseal.type == "transit":
            if unseal.transit_seal is None or (args.transit_token is None and not unseal.transit_token_secret):
                raise InvalidInput("unseal.transit_seal", "AutoUnseal: transit needs its settings and a token")
            # The token from the operator's own Secret (it never passes through the stack), or from the
            # config into the stack's Secret (dev).
            data: dict[str, pulumi.Input[str]] = {"transit-ca.crt": unseal.transit_ca_cert}
            if not unseal.transit_token_secret:
                assert args.transit_token is not None
                data["VAULT_TOKEN"] = pulumi.Output.secret(args.transit_token)
            secret = k8s.core.v1.Secret(
                f"{name}-transit",
                metadata=k8s.meta.v1.ObjectMetaArgs(name=names.unseal_secret, namespace=args.namespace),
                type="Opaque",
                string_data=data,
                opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["stringData", "data"]),
            )
            self.seal = pulumi.Output.from_input(unseal.transit_seal)
            token_secret = unseal.transit_token_secret
            self.wiring = object_name(secret).apply(lambda secret_name: UnsealWiring(
                secret_env=[{"envName": "VAULT_TOKEN", "secretName": token_secret or secret_name,
                             "secretKey": "VAULT_TOKEN"}],
                secret_volume=secret_name if unseal.transit_ca_cert else None))
        else:
            self.seal = pulumi.Output.from_input(None)
            self.wiring = pulumi.Output.from_input(UnsealWiring())
        self.kms_key_arn = self.kms_key.arn if self.kms_key is not None else None
        self.register_outputs(outputs)
