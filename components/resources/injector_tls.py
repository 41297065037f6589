"""InjectorTls: the Agent Injector webhook's serving certificate, made by the stack.

Without it the injector makes its own at start-up and patches the MutatingWebhookConfiguration itself
(one replica at a time, through a leader election). A certificate from the stack lets every replica
serve at once and keeps the webhook's caBundle in the chart values, where a preview shows it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s
import pulumi_tls as tls

from components.model.checks import duration_seconds
from components.model.names import Names


@dataclass(frozen=True)
class InjectorTlsArgs:
    namespace: pulumi.Input[str]
    names: Names
    validity: str = "8760h"
    ca_validity: str = "87600h"
    organization: str = "vault-platform"


def _hours(duration: str) -> int:
    return int(duration_seconds(duration) // 3600)


class InjectorTls(pulumi.ComponentResource):
    """Outputs: ``secret_name`` (the kubernetes.io/tls Secret the injector mounts) and ``ca_bundle``
    (base64 of the CA's PEM, for the webhook configuration)."""

    secret_name: pulumi.Output[str]
    ca_bundle: pulumi.Output[str]

    def __init__(self, name: str, args: InjectorTlsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vault-platform:tls:InjectorTls", name, None, opts)
        child = pulumi.ResourceOptions(parent=self)
        names = args.names
        # Its own CA: the API server trusts it for this webhook only, never for Vault's API.
        ca_key = tls.PrivateKey(f"{name}-ca-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
        ca = tls.SelfSignedCert(
            f"{name}-ca",
            private_key_pem=ca_key.private_key_pem,
            is_ca_certificate=True,
            validity_period_hours=_hours(args.ca_validity),
            allowed_uses=["cert_signing", "crl_signing", "digital_signature"],
            subject=tls.SelfSignedCertSubjectArgs(common_name=f"{names.release} agent injector CA",
                                                  organization=args.organization),
            opts=child,
        )
        key = tls.PrivateKey(f"{name}-key", algorithm="ECDSA", ecdsa_curve="P256", opts=child)
        csr = tls.CertRequest(
            f"{name}-csr",
            private_key_pem=key.private_key_pem,
            subject=tls.CertRequestSubjectArgs(common_name=names.injector_service, organization=args.organization),
            dns_names=names.injector_dns_names(),
            opts=child,
        )
        validity = _hours(args.validity)
        cert = tls.LocallySignedCert(
            f"{name}-cert",
            cert_request_pem=csr.cert_request_pem,
            ca_private_key_pem=ca_key.private_key_pem,
            ca_cert_pem=ca.cert_pem,
            validity_period_hours=validity,
            # The caBundle stays the same when only this certificate is renewed.
            early_renewal_hours=min(720, validity // 3),
            allowed_uses=["digital_signature", "key_encipherment", "server_auth"],
            opts=child,
        )
        secret = k8s.core.v1.Secret(
            f"{name}-secret",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=names.injector_tls_secret, namespace=args.namespace,
                                                labels={"app.kubernetes.io/managed-by": "pulumi",
                                                        "app.kubernetes.io/part-of": "vault-platform"}),
            type="kubernetes.io/tls",
            string_data={"tls.crt": cert.cert_pem, "tls.key": pulumi.Output.secret(key.private_key_pem)},
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["stringData", "data"]),
        )
        self.secret_name = secret.metadata.name
        self.ca_bundle = ca.cert_pem.apply(lambda pem: base64.b64encode(pem.encode()).decode())
        self.register_outputs({"secret_name": self.secret_name, "ca_bundle": self.ca_bundle})
