"""LocalTls: a CA and one certificate it signs, made by `pulumi up` itself (dev stacks).

One resource for the pair, because they live and change together: the certificate is renewed in
place (a new key, signed by the same CA, so every client that trusts the CA keeps working) once it
is within ``early_renewal_hours`` of its end, or when its names change; the CA is made anew only
when it nears its own end or its subject changes. The private keys are secret outputs, so they are
in the (encrypted) state: prod keeps its keys in the cluster instead (tls.source certManager).

It needs the `cryptography` package (pinned in requirements.txt), which the program's virtualenv,
where Pulumi runs dynamic providers, has.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

from components.providers.stored import by_value

SECRET_OUTPUTS = ["ca_key_pem", "key_pem"]
# A change to any of these is a new CA (and so a new certificate).
_CA_INPUTS = ("ca_common_name", "organization", "ca_validity_hours", "ca_curve")
# A change to any of these is a new certificate from the same CA.
_LEAF_INPUTS = ("common_name", "dns_names", "ip_addresses", "validity_hours", "early_renewal_hours", "client_auth")


class LocalTlsProvider(ResourceProvider):
    @staticmethod
    def _now():
        import datetime

        return datetime.datetime.now(datetime.UTC)

    @staticmethod
    def _key(curve: str):
        from cryptography.hazmat.primitives.asymmetric import ec

        return ec.generate_private_key(ec.SECP384R1() if curve == "P384" else ec.SECP256R1())

    @staticmethod
    def _pem_key(key) -> str:
        from cryptography.hazmat.primitives import serialization

        return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                 serialization.NoEncryption()).decode()

    @staticmethod
    def _pem_cert(cert) -> str:
        from cryptography.hazmat.primitives import serialization

        return cert.public_bytes(serialization.Encoding.PEM).decode()

    def _make_ca(self, props: dict[str, Any]) -> dict[str, Any]:
        import datetime

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes
        from cryptography.x509.oid import NameOID

        key = self._key(str(props.get("ca_curve") or "P384"))
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, str(props["ca_common_name"])),
                          x509.NameAttribute(NameOID.ORGANIZATION_NAME, str(props["organization"]))])
        now = self._now()
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(now + datetime.timedelta(hours=int(props["ca_validity_hours"])))
                .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
                .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False,
                                             key_encipherment=False, data_encipherment=False, key_agreement=False,
                                             key_cert_sign=True, crl_sign=True, encipher_only=False,
                                             decipher_only=False), critical=True)
                .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
                .sign(key, hashes.SHA256()))
        return {"ca_cert_pem": self._pem_cert(cert), "ca_key_pem": self._pem_key(key),
                "ca_not_after": int(cert.not_valid_after_utc.timestamp())}

    def _make_leaf(self, props: dict[str, Any], ca: dict[str, Any]) -> dict[str, Any]:
        import datetime
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        ca_cert = x509.load_pem_x509_certificate(str(ca["ca_cert_pem"]).encode())
        ca_key = serialization.load_pem_private_key(str(ca["ca_key_pem"]).encode(), password=None)
        key = self._key("P256")
        now = self._now()
        names: list[x509.GeneralName] = [x509.DNSName(str(n)) for n in props.get("dns_names") or []]
        names += [x509.IPAddress(ipaddress.ip_address(str(i))) for i in props.get("ip_addresses") or []]
        usages = [ExtendedKeyUsageOID.SERVER_AUTH]
        if props.get("client_auth"):
            # Raft peers present the server certificate to each other when joining.
            usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, str(props["common_name"])),
                                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, str(props["organization"]))]))
                .issuer_name(ca_cert.subject).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - datetime.timedelta(minutes=5))
                .not_valid_after(min(now + datetime.timedelta(hours=int(props["validity_hours"])),
                                     ca_cert.not_valid_after_utc))
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.SubjectAlternativeName(names), critical=False)
                .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
                .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=True,
                                             data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                             crl_sign=False, encipher_only=False, decipher_only=False),
                               critical=True)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        return {"cert_pem": self._pem_cert(cert), "key_pem": self._pem_key(key),
                "not_after": int(cert.not_valid_after_utc.timestamp())}

    def _due(self, outs: dict[str, Any], field: str, hours: float) -> bool:
        """Whether the certificate whose end is ``outs[field]`` is within ``hours`` of it."""
        return float(outs.get(field) or 0) - self._now().timestamp() <= hours * 3600

    # --- the provider interface -------------------------------------------------------------

    def create(self, props: dict[str, Any]) -> CreateResult:
        ca = self._make_ca(props)
        return CreateResult(id_="local-tls", outs={**props, **ca, **self._make_leaf(props, ca)})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in (*_CA_INPUTS, *_LEAF_INPUTS) if olds.get(k) != news.get(k)]
        renewal = float(news.get("early_renewal_hours") or 0)
        if self._due(olds, "not_after", renewal):
            changed.append("not_after")
        if self._due(olds, "ca_not_after", renewal):
            changed.append("ca_not_after")
        return DiffResult(changes=bool(changed), replaces=[], stables=[], delete_before_replace=False)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        renewal = float(news.get("early_renewal_hours") or 0)
        keep_ca = (all(olds.get(k) == news.get(k) for k in _CA_INPUTS)
                   and not self._due(olds, "ca_not_after", renewal))
        ca = {k: olds[k] for k in ("ca_cert_pem", "ca_key_pem", "ca_not_after")} if keep_ca else self._make_ca(news)
        return UpdateResult(outs={**news, **ca, **self._make_leaf(news, ca)})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_=id_, outs=props)


_STORED_PROVIDER = by_value(LocalTlsProvider)


class LocalTls(Resource, module="tls", name="LocalTls"):
    """Outputs: ``ca_cert_pem``, ``cert_pem`` (public), ``ca_key_pem``, ``key_pem`` (secret), ``not_after``."""

    ca_cert_pem: pulumi.Output[str]
    ca_key_pem: pulumi.Output[str]
    cert_pem: pulumi.Output[str]
    key_pem: pulumi.Output[str]
    not_after: pulumi.Output[int]

    def __init__(self, name: str, *, ca_common_name: str, common_name: str, organization: str,
                 dns_names: list[str], ip_addresses: list[str], validity_hours: int, ca_validity_hours: int,
                 early_renewal_hours: int, client_auth: bool, ca_curve: str = "P384",
                 opts: pulumi.ResourceOptions | None = None):
        props = {
            "ca_common_name": ca_common_name, "common_name": common_name, "organization": organization,
            "dns_names": dns_names, "ip_addresses": ip_addresses, "validity_hours": validity_hours,
            "ca_validity_hours": ca_validity_hours, "early_renewal_hours": early_renewal_hours,
            "client_auth": client_auth, "ca_curve": ca_curve,
            "ca_cert_pem": None, "ca_key_pem": None, "cert_pem": None, "key_pem": None, "not_after": None,
            "ca_not_after": None,
        }
        super().__init__(_STORED_PROVIDER(), name, props, pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(additional_secret_outputs=SECRET_OUTPUTS)))
