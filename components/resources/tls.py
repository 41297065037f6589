"""VaultTls: the internal CA and server certificate, delivered as a kubernetes.io/tls Secret."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.render import tls_objects as to
from components.resources.certificate_pair import CertificatePair, CertificatePairArgs
from components.resources.errors import InvalidInput


@dataclass(frozen=True)
class VaultTlsArgs:
    # The Vault namespace (the resource's name, so the certificate's objects wait for it).
    namespace: pulumi.Input[str]
    # The Helm release: it names the cert-manager objects of a CA of the stack's own.
    release: str
    # How the certificate is made (components.render.tls_objects.ServerTls.of).
    tls: to.ServerTls


class VaultTls(pulumi.ComponentResource):
    """The servers' certificate, made by `pulumi up` or cert-manager, or the operator's existing Secret."""

    ca_cert_pem: pulumi.Output[str]
    """PEM of the CA the server certificate chains to (public)."""
    secret_name: pulumi.Output[str]
    """The kubernetes.io/tls Secret the server pods mount."""
    cert_pem: pulumi.Output[str] | None = None
    """The server certificate (public); None for an existing Secret, which the stack does not read."""

    def __init__(self, name: str, args: VaultTlsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vault-platform:tls:VaultTls", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        t = args.tls

        if t.source == "existingSecret":
            if not t.existing_secret:
                raise InvalidInput("tls.existing_secret", "VaultTls: tls.source existingSecret needs the Secret's "
                                                          "name (tls.existingSecret)")
            self.ca_cert_pem = pulumi.Output.from_input(t.existing_ca_cert)
            self.secret_name = pulumi.Output.from_input(t.existing_secret)
            self.register_outputs({"ca_cert_pem": self.ca_cert_pem, "secret_name": self.secret_name})
            return
        if t.pair is None:
            raise InvalidInput("tls.pair", f"VaultTls: tls.source {t.source} needs the certificate to make")

        pair = CertificatePair(f"{name}-pair", CertificatePairArgs(
            t.pair, args.namespace, args.release, source=t.source, issuer=t.issuer,
            secret_aliases=(pulumi.Alias(name=f"{name}-secret", parent=self),)),
            opts=child)
        self.ca_cert_pem, self.cert_pem, self.secret_name = pair.ca_cert_pem, pair.cert_pem, pair.secret_name
        self.register_outputs({"ca_cert_pem": self.ca_cert_pem, "secret_name": self.secret_name})
