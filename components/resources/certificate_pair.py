"""CertificatePair: a CA and the certificate it signs, in a kubernetes.io/tls Secret (tls.crt with the
chain, tls.key, ca.crt), made by `pulumi up` (source generated) or by cert-manager in the cluster
(source certManager). The objects come from components.render.tls_objects.

With cert-manager no private key passes through Pulumi: the certificates are read back from the
CertificateRequest of the certificate's current revision, which holds the signed certificate and its
CA and nothing secret. That read happens on every run, so a certificate cert-manager renewed between
runs is seen (and the servers restarted onto it) by the next `pulumi up`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import pulumi
import pulumi_kubernetes as k8s

from components.providers.local_tls import LocalTls
from components.render import tls_objects as to
from components.render.labels import platform_labels
from components.resources.manifests import object_name


@dataclass(frozen=True)
class CertificatePairArgs:
    # The CA and the certificate it signs (components.render.tls_objects).
    pair: to.PairSpec
    # The Vault namespace (the resource's name, so the objects wait for it).
    namespace: pulumi.Input[str]
    # The Helm release: it names the cert-manager objects of a CA of the stack's own.
    release: str
    # Who makes the keys: `pulumi up` (generated) or cert-manager in the cluster (certManager).
    source: Literal["generated", "certManager"]
    # certManager: an issuer of the operator's to sign the certificate (no CA of the stack's own).
    issuer: to.IssuerRef | None = None
    # generated: where the Secret was declared before this component held it (so moving it here is not
    # a delete of the Kubernetes Secret the new resource has just written).
    secret_aliases: tuple[pulumi.Alias, ...] = ()


def _body(manifest: dict) -> dict:
    return {k: v for k, v in manifest.items() if k not in ("apiVersion", "kind")}


class _Issued(pulumi.CustomResource):
    """A cert-manager object as it is in the cluster, read on every run (its ``status`` included, which
    CustomResource.get leaves out of the outputs it resolves)."""

    status: pulumi.Output[dict]

    def __init__(self, name: str, kind: str, id_: pulumi.Input[str], opts: pulumi.ResourceOptions):
        super().__init__(f"kubernetes:{to.CERT_MANAGER_API}:{kind}", name,
                         {"apiVersion": to.CERT_MANAGER_API, "kind": kind, "metadata": None, "status": None},
                         pulumi.ResourceOptions.merge(opts, pulumi.ResourceOptions(id=id_)))


class CertificatePair(pulumi.ComponentResource):
    """A CA and the certificate it signs, in a kubernetes.io/tls Secret."""

    ca_cert_pem: pulumi.Output[str]
    """PEM of the CA (public)."""
    cert_pem: pulumi.Output[str]
    """PEM of the certificate (public)."""
    secret_name: pulumi.Output[str]
    """The kubernetes.io/tls Secret pods mount."""

    def __init__(self, name: str, args: CertificatePairArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vault-platform:tls:CertificatePair", name, None, opts)
        if args.source == "generated":
            self._generated(name, args)
        else:
            self._cert_manager(name, args)
        self.register_outputs({"ca_cert_pem": self.ca_cert_pem, "cert_pem": self.cert_pem,
                               "secret_name": self.secret_name})

    def _generated(self, name: str, args: CertificatePairArgs) -> None:
        p = args.pair
        child = pulumi.ResourceOptions(parent=self)
        local = LocalTls(f"{name}-keys", ca_common_name=p.ca_common_name, common_name=p.common_name,
                         organization=p.organization, dns_names=list(p.dns_names), ip_addresses=list(p.ip_addresses),
                         validity_hours=p.validity_hours, ca_validity_hours=p.ca_validity_hours,
                         early_renewal_hours=p.early_renewal_hours, client_auth=p.client_auth, ca_curve=p.ca_curve,
                         opts=child)
        secret = k8s.core.v1.Secret(
            f"{name}-secret",
            metadata=k8s.meta.v1.ObjectMetaArgs(name=p.secret_name, namespace=args.namespace,
                                                labels=platform_labels()),
            type="kubernetes.io/tls",
            string_data={"tls.crt": pulumi.Output.concat(local.cert_pem, local.ca_cert_pem),
                         "tls.key": pulumi.Output.secret(local.key_pem), "ca.crt": local.ca_cert_pem},
            opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["stringData", "data"],
                                        aliases=list(args.secret_aliases) or None))
        self.ca_cert_pem, self.cert_pem, self.secret_name = local.ca_cert_pem, local.cert_pem, object_name(secret)

    def _custom(self, name: str, manifest: dict, namespace: pulumi.Input[str],
                depends_on: list[pulumi.Resource]) -> k8s.apiextensions.CustomResource:
        body = _body(manifest)
        return k8s.apiextensions.CustomResource(
            name, api_version=manifest["apiVersion"], kind=manifest["kind"],
            metadata={**body["metadata"], "namespace": namespace}, spec=body["spec"],
            opts=pulumi.ResourceOptions(parent=self, depends_on=depends_on))

    def _cert_manager(self, name: str, args: CertificatePairArgs) -> None:
        p, release, namespace = args.pair, args.release, args.namespace
        issuer = args.issuer
        waits: list[pulumi.Resource] = []
        if issuer is None:
            signer = self._custom(f"{name}-selfsigned", to.self_signed_issuer(p, release), namespace, [])
            ca = self._custom(f"{name}-ca", to.ca_certificate(p, release), namespace, [signer])
            ca_issuer = self._custom(f"{name}-ca-issuer", to.ca_issuer(p, release), namespace, [ca])
            issuer = to.IssuerRef("Issuer", to.ca_names(release, p.label)[1])
            waits = [ca_issuer]
        certificate = self._custom(f"{name}-certificate", to.leaf_certificate(p, issuer), namespace, waits)
        # Read back what cert-manager issued, as it is now: the certificate's revision, then that
        # revision's request (its status holds the certificate and the CA, base64-encoded).
        # By the certificate's id ("<namespace>/<name>"): unknown in the preview that creates it, so
        # nothing is read before it exists.
        live = _Issued(f"{name}-issued", "Certificate", certificate.id,
                       pulumi.ResourceOptions(parent=self, depends_on=[certificate]))
        revision = live.status.apply(lambda s: int((s or {}).get("revision") or 1))
        request_id = pulumi.Output.all(namespace=namespace, revision=revision).apply(
            lambda v: f"{v['namespace']}/{to.certificate_request_name(p.secret_name, v['revision'])}")
        request = _Issued(f"{name}-request", "CertificateRequest", request_id,
                          pulumi.ResourceOptions(parent=self, depends_on=[live]))
        self.ca_cert_pem = request.status.apply(lambda s: to.pem_from_request(s, "ca"))
        self.cert_pem = request.status.apply(lambda s: to.pem_from_request(s, "certificate"))
        self.secret_name = pulumi.Output.from_input(p.secret_name)
