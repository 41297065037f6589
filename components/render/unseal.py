"""How the server pods unseal themselves (unseal.*), as AutoUnseal declares it. Pure: no Pulumi, no I/O."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from components.model import AwsConfig, UnsealConfig
from components.render.iam import AwsAccount
from components.render.server_hcl import SealStanza, awskms_seal, seal_for


@dataclass(frozen=True)
class UnsealPlan:
    """Everything AutoUnseal is made from.

    ``type``: awskms (a KMS key of the stack's, used through an IRSA role), transit (another Vault's
    transit key) or shamir (the stack unseals the pods: nothing to declare).
    awskms: ``aws``, the account the key and its role are made in; ``kms_alias``, the key's alias
    without ``alias/`` (empty: ``vault-unseal-<project>-<stack>``); ``kms_deletion_window_days``, how
    long AWS waits before deleting the key once scheduled.
    transit: ``transit_seal``, the seal stanza (never the token); ``transit_ca_cert``, PEM of the other
    Vault's CA (empty: the system roots); ``transit_token_secret``, the operator's Secret holding the
    token (None: the stack writes one from the token it is given).
    """

    type: Literal["awskms", "transit", "shamir"]
    aws: AwsAccount | None = None
    kms_alias: str = ""
    kms_deletion_window_days: int = 30
    transit_seal: SealStanza | None = None
    transit_ca_cert: str = ""
    transit_token_secret: str | None = None

    @classmethod
    def of(cls, unseal: UnsealConfig, aws: AwsConfig | None) -> UnsealPlan:
        transit = unseal.transit
        return cls(type=unseal.type, aws=AwsAccount.of(aws) if aws is not None else None,
                   kms_alias=unseal.awskms.alias, kms_deletion_window_days=unseal.awskms.deletion_window_days,
                   transit_seal=seal_for(unseal) if unseal.type == "transit" and transit is not None else None,
                   transit_ca_cert=transit.ca_cert if transit is not None else "",
                   transit_token_secret=transit.token_secret if transit is not None else None)

    def kms_seal(self, kms_key_id: str) -> SealStanza:
        """The awskms seal stanza, once the key exists."""
        assert self.aws is not None
        return awskms_seal(self.aws.region, kms_key_id)
