"""VaultTls: the internal CA and server certificate, delivered as a kubernetes.io/tls Secret."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi

from components.model import TlsConfig
from components.model.names import Names
from components.render import tls_objects as to
from components.resources.certificate_pair import CertificatePair, CertificatePairArgs
from components.resources.errors import InvalidInput


@dataclass(frozen=True)
class VaultTlsArgs:
    namespace: pulumi.Input[str]
    names: Names
    tls: TlsConfig


class VaultTls(pulumi.ComponentResource):
    """Outputs: ``ca_cert_pem`` (public), ``secret_name`` (the Secret the pods mount). Attribute
    ``cert_pem``: the server certificate (public; None for an existing Secret, which the stack
    does not read)."""

    ca_cert_pem: pulumi.Output[str]
    secret_name: pulumi.Output[str]
    cert_pem: pulumi.Output[str] | None = None

    def __init__(self, name: str, args: VaultTlsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vault-platform:tls:VaultTls", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        names = args.names
        t = args.tls

        if t.source == "existingSecret":
            if not t.existing_secret:
                raise InvalidInput("tls.existingSecret", "VaultTls: tls.source existingSecret needs it")
            self.ca_cert_pem = pulumi.Output.from_input(t.existing_ca_cert)
            self.secret_name = pulumi.Output.from_input(t.existing_secret)
            self.register_outputs({"ca_cert_pem": self.ca_cert_pem, "secret_name": self.secret_name})
            return

        pair = CertificatePair(f"{name}-pair", CertificatePairArgs(
            to.server_pair(names, t), args.namespace, names.release, source=t.source, issuer=to.issuer_of(t),
            secret_aliases=(pulumi.Alias(name=f"{name}-secret", parent=self),)),
            opts=child)
        self.ca_cert_pem, self.cert_pem, self.secret_name = pair.ca_cert_pem, pair.cert_pem, pair.secret_name
        self.register_outputs({"ca_cert_pem": self.ca_cert_pem, "secret_name": self.secret_name})
