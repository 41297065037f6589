"""VaultTls: the internal CA and server certificate, delivered as a kubernetes.io/tls Secret."""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_tls as tls

from components.model import TlsConfig
from components.model.checks import duration_seconds
from components.model.limits import early_renewal_hours
from components.model.names import Names


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
                raise ValueError("VaultTls: tls.source existingSecret needs tls.existingSecret")
            self.ca_cert_pem = pulumi.Output.from_input(t.existing_ca_cert)
            self.secret_name = pulumi.Output.from_input(t.existing_secret)
            self.register_outputs({"ca_cert_pem": self.ca_cert_pem, "secret_name": self.secret_name})
            return

        subject = tls.SelfSignedCertSubjectArgs(common_name=f"{names.release} internal CA",
                                                organization=t.organization)
        ca_key = tls.PrivateKey(f"{name}-ca-key", algorithm="ECDSA", ecdsa_curve="P384", opts=child)
        ca = tls.SelfSignedCert(
            f"{name}-ca",
            private_key_pem=ca_key.private_key_pem,
            is_ca_certificate=True,
            validity_period_hours=int(duration_seconds(t.ca_validity) // 3600),
            allowed_uses=["cert_signing", "crl_signing", "digital_signature"],
            subject=subject,
            opts=child,
        )
        server_key = tls.PrivateKey(f"{name}-server-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
        csr = tls.CertRequest(
            f"{name}-server-csr",
            private_key_pem=server_key.private_key_pem,
            subject=tls.CertRequestSubjectArgs(common_name=names.active_service, organization=t.organization),
            dns_names=names.server_dns_names(tuple(t.extra_dns_names)),
            ip_addresses=["127.0.0.1", *args.tls.extra_ip_addresses],
            opts=child,
        )
        server_cert = tls.LocallySignedCert(
            f"{name}-server-cert",
            cert_request_pem=csr.cert_request_pem,
            ca_private_key_pem=ca_key.private_key_pem,
            ca_cert_pem=ca.cert_pem,
            validity_period_hours=int(duration_seconds(t.validity) // 3600),
            # Renew a month early (or at 2/3 of a short lifetime) so `pulumi up` replaces it in time.
            early_renewal_hours=early_renewal_hours(int(duration_seconds(t.validity) // 3600)),
            # client_auth: Raft peers present this certificate to each other when joining.
            allowed_uses=["digital_signature", "key_encipherment", "server_auth", "client_auth"],
            opts=child,
        )
        secret = k8s.core.v1.Secret(
            f"{name}-secret",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=names.tls_secret, namespace=args.namespace,
                                                labels={"app.kubernetes.io/managed-by": "pulumi",
                                                        "app.kubernetes.io/part-of": "vault-platform"}),
            type="kubernetes.io/tls",
            string_data={
                "tls.crt": pulumi.Output.concat(server_cert.cert_pem, ca.cert_pem),
                "tls.key": pulumi.Output.secret(server_key.private_key_pem),
                "ca.crt": ca.cert_pem,
            },
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["stringData", "data"]),
        )
        self.ca_cert_pem = ca.cert_pem
        self.cert_pem = server_cert.cert_pem
        self.secret_name = secret.metadata.name
        self.register_outputs({"ca_cert_pem": self.ca_cert_pem, "secret_name": self.secret_name})
