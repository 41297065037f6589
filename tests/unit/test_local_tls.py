"""LocalTls and GeneratedPassword, the providers a dev stack makes its certificates and passwords with."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID

from components.providers.generated_password import GeneratedPasswordProvider
from components.providers.local_tls import LocalTlsProvider

PROPS = {"ca_common_name": "vault internal CA", "common_name": "vault-active", "organization": "vault-platform",
         "dns_names": ["vault-active", "vault-0.vault-internal"], "ip_addresses": ["127.0.0.1"],
         "validity_hours": 720, "ca_validity_hours": 87600, "early_renewal_hours": 240, "client_auth": True,
         "ca_curve": "P384"}


def certs(outs: dict) -> tuple[x509.Certificate, x509.Certificate]:
    return (x509.load_pem_x509_certificate(outs["ca_cert_pem"].encode()),
            x509.load_pem_x509_certificate(outs["cert_pem"].encode()))


def signed_by(leaf: x509.Certificate, ca: x509.Certificate) -> bool:
    key = ca.public_key()
    assert isinstance(key, ec.EllipticCurvePublicKey)
    try:
        key.verify(leaf.signature, leaf.tbs_certificate_bytes, ec.ECDSA(leaf.signature_hash_algorithm))
    except Exception:
        return False
    return True


def test_the_certificate_is_signed_by_the_ca_for_every_name_and_use():
    outs = LocalTlsProvider().create(dict(PROPS)).outs
    ca, leaf = certs(outs)
    assert signed_by(leaf, ca) and ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(sans.get_values_for_type(x509.DNSName)) == {"vault-active", "vault-0.vault-internal"}
    assert [str(i) for i in sans.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    usages = leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert {ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH} <= set(usages)
    lifetime = leaf.not_valid_after_utc - leaf.not_valid_before_utc
    assert datetime.timedelta(hours=720) <= lifetime <= datetime.timedelta(hours=720, minutes=10)
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey) and ca.public_key().curve.name == "secp384r1"
    assert "PRIVATE KEY" in outs["key_pem"] and "PRIVATE KEY" in outs["ca_key_pem"]


def test_nothing_changes_until_the_certificate_is_due_then_it_is_renewed_under_the_same_ca():
    provider = LocalTlsProvider()
    outs = provider.create(dict(PROPS)).outs
    assert not provider.diff("id", outs, dict(PROPS)).changes
    due = {**outs, "not_after": int(datetime.datetime.now(datetime.UTC).timestamp()) + 3600}
    assert provider.diff("id", due, dict(PROPS)).changes
    renewed = provider.update("id", due, dict(PROPS)).outs
    assert renewed["ca_cert_pem"] == outs["ca_cert_pem"] and renewed["ca_key_pem"] == outs["ca_key_pem"]
    assert renewed["key_pem"] != outs["key_pem"] and renewed["cert_pem"] != outs["cert_pem"]
    ca, leaf = certs(renewed)
    assert signed_by(leaf, ca)


def test_new_names_are_a_new_certificate_and_a_new_ca_subject_a_new_ca():
    provider = LocalTlsProvider()
    outs = provider.create(dict(PROPS)).outs
    more = {**PROPS, "dns_names": [*PROPS["dns_names"], "vault.example.com"]}
    assert provider.diff("id", outs, more).changes
    renamed = provider.update("id", outs, more).outs
    assert renamed["ca_cert_pem"] == outs["ca_cert_pem"]
    assert "vault.example.com" in certs(renamed)[1].extensions.get_extension_for_class(
        x509.SubjectAlternativeName).value.get_values_for_type(x509.DNSName)
    other = {**PROPS, "ca_common_name": "another CA"}
    rebuilt = provider.update("id", outs, other).outs
    assert rebuilt["ca_cert_pem"] != outs["ca_cert_pem"] and signed_by(certs(rebuilt)[1], certs(rebuilt)[0])


def test_a_certificate_never_outlives_its_ca():
    outs = LocalTlsProvider().create({**PROPS, "validity_hours": 100, "ca_validity_hours": 10}).outs
    ca, leaf = certs(outs)
    assert leaf.not_valid_after_utc <= ca.not_valid_after_utc


@pytest.mark.parametrize("length", [24, 32])
def test_a_generated_password_has_letters_and_digits_only_and_stays(length):
    provider = GeneratedPasswordProvider()
    outs = provider.create({"length": length}).outs
    value = outs["result"]
    assert len(value) == length and value.isalnum()
    assert any(c.islower() for c in value) and any(c.isupper() for c in value) and any(c.isdigit() for c in value)
    assert provider.create({"length": length}).outs["result"] != value
    assert not provider.diff("id", outs, {"length": length}).changes
    assert provider.diff("id", outs, {"length": length + 1}).replaces == ["length"]
