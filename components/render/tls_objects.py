"""What a certificate pair is made of, for the two ways the stack makes one. Pure: no Pulumi, no I/O.

A pair is a CA and one certificate it signs: the Vault servers' (server and client auth: Raft peers
present it to each other) and the Agent Injector webhook's (its own CA: the API server trusts it
for the webhook only). ``generated`` stacks make it with LocalTls in `pulumi up`; ``certManager``
stacks declare the cert-manager objects below, and cert-manager makes the keys in the cluster:
a self-signed Issuer, the CA's Certificate, an Issuer of that CA, the Certificate it signs (or the
operator's own issuer, which signs it directly). Either way the certificate is renewed in place a
third of its life (at most 30 days) before it ends.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from components.model import TlsConfig
from components.model.checks import duration_seconds
from components.model.limits import early_renewal_hours
from components.model.names import Names
from components.render.durations import go_duration
from components.render.labels import platform_labels

CERT_MANAGER_API = "cert-manager.io/v1"
# pulumi-kubernetes waits until cert-manager says the certificate is issued before going on.
WAIT_FOR_READY = {"pulumi.com/waitFor": "condition=Ready"}


@dataclass(frozen=True)
class PairSpec:
    """One CA and the certificate it signs."""

    label: str  # what the pair is for, in object names: "server", "injector"
    ca_common_name: str
    common_name: str
    organization: str
    dns_names: tuple[str, ...]
    ip_addresses: tuple[str, ...]
    validity_hours: int
    ca_validity_hours: int
    client_auth: bool
    ca_curve: str
    secret_name: str

    @property
    def early_renewal_hours(self) -> int:
        return early_renewal_hours(self.validity_hours)


def _hours(duration: str) -> int:
    return int(duration_seconds(duration) // 3600)


def server_pair(names: Names, t: TlsConfig) -> PairSpec:
    return PairSpec(label="server", ca_common_name=f"{names.release} internal CA", common_name=names.active_service,
                    organization=t.organization, dns_names=tuple(names.server_dns_names(tuple(t.extra_dns_names))),
                    ip_addresses=("127.0.0.1", *t.extra_ip_addresses), validity_hours=_hours(t.validity),
                    ca_validity_hours=_hours(t.ca_validity), client_auth=True, ca_curve="P384",
                    secret_name=names.tls_secret)


def injector_pair(names: Names, t: TlsConfig, validity: str) -> PairSpec:
    return PairSpec(label="injector", ca_common_name=f"{names.release} agent injector CA",
                    common_name=names.injector_service, organization=t.organization,
                    dns_names=tuple(names.injector_dns_names()), ip_addresses=(),
                    validity_hours=_hours(validity), ca_validity_hours=_hours(t.ca_validity), client_auth=False,
                    ca_curve="P256", secret_name=names.injector_tls_secret)


def issuer_of(t: TlsConfig) -> IssuerRef | None:
    """The operator's issuer (tls.issuer), or None for the stack's own CA."""
    return IssuerRef(t.issuer.kind, t.issuer.name) if t.issuer is not None and t.issuer.name else None


@dataclass(frozen=True)
class ServerTls:
    """How the servers' certificate is made (tls.*), as VaultTls declares it.

    ``source``: generated (by `pulumi up`), certManager (in the cluster) or existingSecret (the
    operator's). generated and certManager: the ``pair`` to make and, with certManager, the operator's
    ``issuer`` that signs it (None: a CA of the stack's own). existingSecret: the Secret's name
    (``existing_secret``) and the PEM of the CA that signed its certificate (``existing_ca_cert``).
    """

    source: Literal["generated", "certManager", "existingSecret"]
    pair: PairSpec | None = None
    issuer: IssuerRef | None = None
    existing_secret: str = ""
    existing_ca_cert: str = ""

    @classmethod
    def of(cls, names: Names, t: TlsConfig) -> ServerTls:
        if t.source == "existingSecret":
            return cls(t.source, existing_secret=t.existing_secret or "", existing_ca_cert=t.existing_ca_cert)
        return cls(t.source, pair=server_pair(names, t), issuer=issuer_of(t))

    @property
    def secret_name(self) -> str:
        """The kubernetes.io/tls Secret the server pods mount."""
        return self.pair.secret_name if self.pair is not None else self.existing_secret


# --- cert-manager -----------------------------------------------------------------------------------

@dataclass(frozen=True)
class IssuerRef:
    kind: str
    name: str

    def manifest(self) -> dict[str, str]:
        return {"group": "cert-manager.io", "kind": self.kind, "name": self.name}


def self_signed_issuer_name(release: str, label: str) -> str:
    return f"{release}-{label}-selfsigned"


def ca_names(release: str, label: str) -> tuple[str, str]:
    """(the CA Certificate and its Secret, the Issuer of that CA) of one pair."""
    return f"{release}-{label}-ca", f"{release}-{label}-ca"


def _meta(name: str, annotations: dict[str, str] | None = None) -> dict[str, Any]:
    """(The namespace is the Vault namespace's, which the component adds.)"""
    meta: dict[str, Any] = {"name": name,
                            "labels": platform_labels()}
    if annotations:
        meta["annotations"] = dict(annotations)
    return meta


def self_signed_issuer(pair: PairSpec, release: str) -> dict[str, Any]:
    """Signs the pair's CA only: the CA Issuer below signs everything else."""
    return {"apiVersion": CERT_MANAGER_API, "kind": "Issuer",
            "metadata": _meta(self_signed_issuer_name(release, pair.label)), "spec": {"selfSigned": {}}}


def ca_certificate(pair: PairSpec, release: str) -> dict[str, Any]:
    name, _ = ca_names(release, pair.label)
    return {"apiVersion": CERT_MANAGER_API, "kind": "Certificate",
            "metadata": _meta(name, WAIT_FOR_READY),
            "spec": {"isCA": True, "commonName": pair.ca_common_name, "secretName": name,
                     "subject": {"organizations": [pair.organization]},
                     "duration": go_duration(f"{pair.ca_validity_hours}h"),
                     "renewBefore": go_duration(f"{early_renewal_hours(pair.ca_validity_hours)}h"),
                     "privateKey": {"algorithm": "ECDSA", "size": 384 if pair.ca_curve == "P384" else 256,
                                    "rotationPolicy": "Never"},
                     "issuerRef": IssuerRef("Issuer", self_signed_issuer_name(release, pair.label)).manifest()}}


def ca_issuer(pair: PairSpec, release: str) -> dict[str, Any]:
    secret, issuer = ca_names(release, pair.label)
    return {"apiVersion": CERT_MANAGER_API, "kind": "Issuer", "metadata": _meta(issuer),
            "spec": {"ca": {"secretName": secret}}}


def leaf_certificate(pair: PairSpec, issuer: IssuerRef) -> dict[str, Any]:
    usages = ["digital signature", "key encipherment", "server auth"]
    if pair.client_auth:
        usages.append("client auth")
    spec: dict[str, Any] = {
        "secretName": pair.secret_name, "commonName": pair.common_name,
        "subject": {"organizations": [pair.organization]},
        "dnsNames": list(pair.dns_names), "duration": go_duration(f"{pair.validity_hours}h"),
        "renewBefore": go_duration(f"{pair.early_renewal_hours}h"),
        # A new key with every renewal: a key never outlives its certificate.
        "privateKey": {"algorithm": "ECDSA", "size": 256, "rotationPolicy": "Always"},
        "usages": usages, "issuerRef": issuer.manifest(),
        # cert-manager writes the Secret from this template: Pulumi does not manage it.
        "secretTemplate": {"labels": platform_labels(managed=False)},
    }
    if pair.ip_addresses:
        spec["ipAddresses"] = list(pair.ip_addresses)
    return {"apiVersion": CERT_MANAGER_API, "kind": "Certificate",
            "metadata": _meta(pair.secret_name, WAIT_FOR_READY), "spec": spec}


def certificate_request_name(certificate: str, revision: int) -> str:
    """cert-manager names the request of each issuance after its certificate and revision."""
    return f"{certificate}-{revision}"


def pem_from_request(status: dict[str, Any] | None, field: str) -> str:
    """A PEM of a CertificateRequest's status (``certificate`` or ``ca``), which holds it base64-encoded."""
    import base64

    value = (status or {}).get(field) or ""
    return base64.b64decode(value).decode() if value else ""
