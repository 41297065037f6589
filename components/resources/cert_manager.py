"""CertManagerIssuer: a cert-manager Issuer in each namespace that requests certificates, signing with the
PKI role bound to that namespace and logging in through Kubernetes auth as a service account of that
namespace. Built by components.render.cert_manager; its Vault roles and policies are part of
VaultConfiguration.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pulumi

from components.render.cert_manager import VaultIssuer
from components.resources.manifests import custom_resource, declare


@dataclass(frozen=True)
class CertManagerIssuerArgs:
    # The Issuers and their access (components.render.cert_manager.VaultIssuer.of).
    issuer: VaultIssuer
    # Our CA (public), which cert-manager verifies Vault's certificate with.
    ca_cert_pem: pulumi.Input[str]


class CertManagerIssuer(pulumi.ComponentResource):
    """An Issuer on the PKI engine in each namespace that requests certificates, with its access."""

    issuer_name: str
    """The Issuer a Certificate's issuerRef names, in each namespace."""
    namespaces: list[str]
    """Where there is one."""

    def __init__(self, name: str, args: CertManagerIssuerArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vault-platform:delivery:CertManagerIssuer", name, None, opts)
        issuer = args.issuer
        ca_bundle = pulumi.Output.from_input(args.ca_cert_pem).apply(
            lambda pem: base64.b64encode(pem.encode()).decode())
        for namespace in issuer.namespaces:
            access = declare(issuer.access(namespace), f"{name}-{namespace}", pulumi.ResourceOptions(parent=self))
            custom_resource(f"{name}-{namespace}-issuer", issuer.issuer(namespace, ca_bundle),
                            pulumi.ResourceOptions(parent=self, depends_on=access))
        self.issuer_name = issuer.name
        self.namespaces = list(issuer.namespaces)
        self.register_outputs({"issuer_name": self.issuer_name, "namespaces": self.namespaces})
