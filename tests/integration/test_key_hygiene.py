"""PKI, transit and database hygiene as the stack configures it, on real servers:

- a certificate the PKI engine issues names issuer and CRL URLs a client can fetch over TLS, and they
  return the issuing CA and a CRL it signed (which lists a revoked certificate); auto-tidy is on
  with the stack's settings;
- transit keys carry the configured automatic rotation period;
- after the connection is written, the stack's rotate-root (components/providers/database_root.py)
  leaves the configured admin password useless in PostgreSQL while Vault keeps issuing credentials,
  and the connection written again without a password (what the provider sends on a later
  `pulumi up`) keeps working, whereas the old password would be refused.
"""

from __future__ import annotations

import dataclasses
import secrets
import uuid

import psycopg
import pytest
import requests
from cryptography import x509
from cryptography.x509.oid import ExtensionOID
from psycopg import sql

from components.model import load_config
from components.providers.database_root import DatabaseRootRotationProvider
from components.render import vault_objects as vs
from tests.harness import stack_config
from tests.integration import servers
from tests.integration.vault_apply import apply, connection_payload, retarget_connection


def load(stack: str, overrides: dict | None = None):
    config, keys = stack_config(stack, overrides)
    return load_config(config, set(keys))


def test_issuing_and_crl_urls_are_reachable_and_auto_tidy_is_on(tls_raft_node):
    node, tls = tls_raft_node
    node.init_and_unseal()
    # A name clients resolve to this node (the config refuses loopback addresses: a certificate would
    # send every client to itself); the fetches below resolve it to the node, as DNS would.
    port = node.api_addr.rsplit(":", 1)[1]
    base = f"https://vault.internal.example.com:{port}"
    settings = vs.build(load("prod", {"pki": {"urlsBase": base}}))
    assert settings.pki is not None and settings.pki.tidy is not None
    apply(settings, node.api, only={"mounts", "pki"})
    for mount in {settings.pki.root.mount.path, settings.pki.issuing.mount.path}:
        tidy = node.api("GET", f"{mount}/config/auto-tidy")["data"]
        assert tidy["enabled"] is True and tidy["tidy_cert_store"] is True and tidy["tidy_revoked_certs"] is True
        assert tidy["interval_duration"] == settings.pki.tidy.interval_seconds == 12 * 3600
        assert tidy["safety_buffer"] == settings.pki.tidy.safety_buffer_seconds

    role = settings.pki.roles[0]
    issued = node.api("POST", f"{role.backend}/issue/{role.name}", json={"common_name": "api.default.svc"})
    leaf = x509.load_pem_x509_certificate(issued["data"]["certificate"].encode())
    issuer = x509.load_pem_x509_certificate(issued["data"]["issuing_ca"].encode())
    aia = leaf.extensions.get_extension_for_oid(ExtensionOID.AUTHORITY_INFORMATION_ACCESS).value
    (ca_url,) = [d.access_location.value for d in aia]
    points = leaf.extensions.get_extension_for_oid(ExtensionOID.CRL_DISTRIBUTION_POINTS).value
    (crl_url,) = [n.value for p in points for n in p.full_name]
    assert ca_url.startswith(base) and crl_url.startswith(base)
    ca_url, crl_url = (u.replace(base, node.api_addr) for u in (ca_url, crl_url))

    # Fetched as a client would: no token, TLS verified.
    fetched = requests.get(ca_url, verify=tls.ca_cert, timeout=10)
    assert fetched.status_code == 200
    assert x509.load_der_x509_certificate(fetched.content) == issuer
    node.api("POST", f"{role.backend}/revoke", json={"serial_number": issued["data"]["serial_number"]})
    fetched = requests.get(crl_url, verify=tls.ca_cert, timeout=10)
    assert fetched.status_code == 200
    crl = x509.load_der_x509_crl(fetched.content)
    assert crl.is_signature_valid(issuer.public_key())
    assert crl.get_revoked_certificate_by_serial_number(leaf.serial_number) is not None


def test_transit_keys_carry_the_rotation_period(dev_vault):
    """Vault refuses periods under an hour, so this proves Vault holds the period, not a rotation."""
    settings = vs.build(load("prod"))
    assert settings.transit is not None
    dev_vault.api("DELETE", "sys/mounts/secret")
    apply(settings, dev_vault.api, only={"mounts", "transit"})
    for key in settings.transit.keys:
        info = dev_vault.api("GET", f"{settings.transit.mount.path}/keys/{key.name}")["data"]
        assert info["auto_rotate_period"] == key.auto_rotate_period_seconds == 90 * 86400
        assert info["deletion_allowed"] is False


def _pg(postgres, user: str, password: str) -> psycopg.Connection:
    return psycopg.connect(host=postgres.host, port=postgres.port, dbname=postgres.dbname, user=user,
                           password=password, connect_timeout=5)


@pytest.fixture
def vault_admin(postgres):
    """An admin user of its own for Vault (rotating the fixture's superuser would break other tests)."""
    name, password = f"vault_admin_{uuid.uuid4().hex[:8]}", secrets.token_urlsafe(16)
    with _pg(postgres, postgres.user, postgres.password) as admin:
        admin.execute(sql.SQL("CREATE ROLE {} WITH LOGIN CREATEROLE PASSWORD {}").format(
            sql.Identifier(name), sql.Literal(password)))
    try:
        yield name, password
    finally:
        with _pg(postgres, postgres.user, postgres.password) as admin:
            admin.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(name)))


def test_rotate_root_leaves_the_configured_password_useless(dev_vault, postgres, vault_admin):
    user, password = vault_admin
    settings = vs.build(load("prod"))
    assert settings.database is not None
    (conn,) = settings.database.connections
    assert conn.rotate_root
    here = retarget_connection(conn, host=postgres.host, port=postgres.port, dbname=postgres.dbname, username=user)
    settings = dataclasses.replace(settings, database=dataclasses.replace(settings.database, connections=(here,)))
    dev_vault.api("DELETE", "sys/mounts/secret")
    apply(settings, dev_vault.api, only={"mounts", "database"}, passwords={conn.name: password})
    mount, role = settings.database.mount.path, settings.database.roles[0]

    props = {"address": dev_vault.api_addr, "ca_cert_pem": "", "token": servers.DEV_ROOT_TOKEN, "mount": mount,
             "connection": conn.name, "connection_url": here.connection_url, "username": user}
    DatabaseRootRotationProvider().create(props)

    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        _pg(postgres, user, password).close()
    leases = []
    creds = dev_vault.api("GET", f"{mount}/creds/{role.name}")
    leases.append(creds["lease_id"])
    with _pg(postgres, creds["data"]["username"], creds["data"]["password"]) as session:
        assert session.execute("SELECT current_user").fetchone() == (creds["data"]["username"],)

    # The next `pulumi up` changes something else on the connection: no password in the request.
    payload = connection_payload(here, password)
    del payload["password"]
    payload["max_open_connections"] = here.max_open_connections + 1
    dev_vault.api("POST", f"{mount}/config/{conn.name}", json=payload)
    creds = dev_vault.api("GET", f"{mount}/creds/{role.name}")
    leases.append(creds["lease_id"])
    with _pg(postgres, creds["data"]["username"], creds["data"]["password"]) as session:
        assert session.execute("SELECT 1").fetchone() == (1,)
    # Sending the configured password again is what must never happen: Vault refuses it now.
    dev_vault.api("POST", f"{mount}/config/{conn.name}", json=connection_payload(here, password), expect=(400, 500))
    for lease in leases:
        dev_vault.api("PUT", "sys/leases/revoke", json={"lease_id": lease})
