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

from components.render import tls_objects as to
from components.resources.certificate_pair import CertificatePair, CertificatePairArgs
from components.resources.errors import InvalidInput


@dataclass(frozen=True)
class InjectorTlsArgs:
    # The Vault namespace (the resource's name, so the certificate's objects wait for it).
    namespace: pulumi.Input[str]
    # The Helm release: it names the cert-manager objects of the webhook's CA.
    release: str
    # The CA and certificate to make (components.render.tls_objects.injector_pair).
    pair: to.PairSpec
    # Who makes them, as for the servers' (tls.source): generated (`pulumi up`) or certManager.
    source: str


class InjectorTls(pulumi.ComponentResource):
    """The Agent Injector webhook's serving certificate and its CA."""

    secret_name: pulumi.Output[str]
    """The kubernetes.io/tls Secret the injector mounts."""
    ca_bundle: pulumi.Output[str]
    """Base64 of the CA's PEM, for the webhook configuration's caBundle."""

    def __init__(self, name: str, args: InjectorTlsArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vault-platform:tls:InjectorTls", name, None, opts)
        if args.source not in ("generated", "certManager"):
            raise InvalidInput(
                "source", f"InjectorTls: {args.source!r} (tls.source) leaves the webhook's certificate to the injector")
        pair = CertificatePair(f"{name}-pair", CertificatePairArgs(
            args.pair, args.namespace, args.release, source=args.source,
            secret_aliases=(pulumi.Alias(name=f"{name}-secret", parent=self),)),
            opts=pulumi.ResourceOptions(parent=self))
        self.secret_name = pair.secret_name
        self.ca_bundle = pair.ca_cert_pem.apply(lambda pem: base64.b64encode(pem.encode()).decode())
        self.register_outputs({"secret_name": self.secret_name, "ca_bundle": self.ca_bundle})
