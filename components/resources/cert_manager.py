"""CertManagerIssuer: a cert-manager ClusterIssuer that signs with the PKI engine, logging in through
Kubernetes auth as its own service account. Built by components.render.cert_manager; its Vault role
and policy are part of VaultConfiguration.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pulumi

from components.render.cert_manager import VaultIssuer
from components.resources.manifests import custom_resource, declare


@dataclass(frozen=True)
class CertManagerIssuerArgs:
    issuer: VaultIssuer
    # Our CA (public), which cert-manager verifies Vault's certificate with.
    ca_cert_pem: pulumi.Input[str]


class CertManagerIssuer(pulumi.ComponentResource):
    """Outputs: ``issuer_name`` (the ClusterIssuer a Certificate's issuerRef names)."""

    def __init__(self, name: str, args: CertManagerIssuerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vault-platform:delivery:CertManagerIssuer", name, None, opts)
        issuer = args.issuer
        access = declare(issuer.access(), name, pulumi.ResourceOptions(parent=self))
        ca_bundle = pulumi.Output.from_input(args.ca_cert_pem).apply(
            lambda pem: base64.b64encode(pem.encode()).decode())
        custom_resource(f"{name}-issuer", issuer.cluster_issuer(ca_bundle),
                        pulumi.ResourceOptions(parent=self, depends_on=access))
        self.issuer_name = issuer.name
        self.register_outputs({"issuer_name": self.issuer_name})
