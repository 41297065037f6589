"""InjectorTls: the Agent Injector webhook's serving certificate, made by the stack.

Without it the injector makes its own at start-up and patches the MutatingWebhookConfiguration itself
(one replica at a time, through a leader election). A certificate from the stack lets every replica
serve at once and keeps the webhook's caBundle in the chart values, where a preview shows it. It has
a CA of its own: the API server trusts it for this webhook only, never for Vault's API. Made like the
servers' (tls.source): by `pulumi up` in dev, by cert-manager in the cluster otherwise.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass

import pulumi

from components.model import TlsConfig
from components.model.names import Names
from components.render import tls_objects as to
from components.resources.certificate_pair import CertificatePair, CertificatePairArgs
from components.resources.errors import InvalidInput


@dataclass(frozen=True)
class InjectorTlsArgs:
    namespace: pulumi.Input[str]
    names: Names
    tls: TlsConfig
    validity: str = "8760h"


class InjectorTls(pulumi.ComponentResource):
    """Outputs: ``secret_name`` (the kubernetes.io/tls Secret the injector mounts) and ``ca_bundle``
    (base64 of the CA's PEM, for the webhook configuration)."""

    secret_name: pulumi.Output[str]
    ca_bundle: pulumi.Output[str]

    def __init__(self, name: str, args: InjectorTlsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vault-platform:tls:InjectorTls", name, None, opts)
        names, t = args.names, args.tls
        if t.source not in ("generated", "certManager"):
            raise InvalidInput(
                "tls.source", f"InjectorTls: {t.source!r} leaves the webhook's certificate to the injector")
        pair = CertificatePair(f"{name}-pair", CertificatePairArgs(
            to.injector_pair(names, t, args.validity), args.namespace, names.release, source=t.source,
            secret_aliases=(pulumi.Alias(name=f"{name}-secret", parent=self),)),
            opts=pulumi.ResourceOptions(parent=self))
        self.secret_name = pair.secret_name
        self.ca_bundle = pair.ca_cert_pem.apply(lambda pem: base64.b64encode(pem.encode()).decode())
        self.register_outputs({"secret_name": self.secret_name, "ca_bundle": self.ca_bundle})
