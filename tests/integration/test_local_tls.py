"""The certificates a dev stack makes (LocalTls) serve a real Vault, which clients verify with the CA."""

from __future__ import annotations

import requests

from components.model.names import Names
from components.providers.local_tls import LocalTlsProvider
from components.render.tls_objects import server_pair
from tests.harness import load_stack
from tests.integration import servers


def test_a_server_with_the_stacks_certificate_is_verified_by_its_ca_and_renewal_keeps_clients_working(
        vault_bin, workdir):
    config = load_stack("dev")
    pair = server_pair(Names.of(config), config.tls)
    props = {"ca_common_name": pair.ca_common_name, "common_name": pair.common_name,
             "organization": pair.organization, "dns_names": list(pair.dns_names),
             "ip_addresses": list(pair.ip_addresses), "validity_hours": pair.validity_hours,
             "ca_validity_hours": pair.ca_validity_hours, "early_renewal_hours": pair.early_renewal_hours,
             "client_auth": pair.client_auth, "ca_curve": pair.ca_curve}
    provider = LocalTlsProvider()
    outs = provider.create(props).outs
    # The renewal a later `pulumi up` makes: a new key and certificate under the same CA.
    renewed = provider.update("id", {**outs, "not_after": 0}, props).outs
    for label, made in (("first", outs), ("renewed", renewed)):
        tls_dir = workdir / label
        tls_dir.mkdir()
        (tls_dir / "ca.pem").write_text(made["ca_cert_pem"])
        (tls_dir / "cert.pem").write_text(made["cert_pem"] + made["ca_cert_pem"])
        (tls_dir / "key.pem").write_text(made["key_pem"])
        (tls_dir / "key.pem").chmod(0o600)
        files = servers.TLSFiles(ca_cert=str(tls_dir / "ca.pem"), ca_key="", cert=str(tls_dir / "cert.pem"),
                                 key=str(tls_dir / "key.pem"))
        node = servers.start_raft_node(vault_bin, workdir / label, files)
        try:
            # Verified with the CA the stack exports (the first one: renewal keeps it).
            answer = requests.get(f"{node.api_addr}/v1/sys/health", verify=str(workdir / "first" / "ca.pem"),
                                  timeout=10)
            assert answer.status_code == 501  # sealed and uninitialized, and reached over verified TLS
        finally:
            node.stop()
