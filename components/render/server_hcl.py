"""Render Vault's server configuration (HCL) from the typed config. Pure: no Pulumi, no I/O.

The text goes into the chart's ``server.ha.raft.config``, which the chart puts in a ConfigMap, so
nothing secret may ever appear here: seal tokens travel as environment variables from a Secret.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from components.model import UnsealConfig
from components.model.names import API_PORT, CLUSTER_PORT, DATA_PATH, TLS_MOUNT, UNSEAL_MOUNT, Names


@dataclass(frozen=True)
class SealStanza:
    """A ``seal "<type>" {...}`` block; parameters are plain, non-secret values."""

    type: str
    params: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ServerPaths:
    """Where the files a server reads live. Pods use the chart's mounts; tests rewrite them."""

    tls_cert: str = f"{TLS_MOUNT}/tls.crt"
    tls_key: str = f"{TLS_MOUNT}/tls.key"
    ca_cert: str = f"{TLS_MOUNT}/ca.crt"
    data: str = DATA_PATH
    listen_address: str = f"[::]:{API_PORT}"
    cluster_address: str = f"[::]:{CLUSTER_PORT}"


def q(value: str) -> str:
    """An HCL string literal. JSON escaping is a subset HCL accepts; ${ and %{ must not template."""
    return json.dumps(value).replace("${", "$${").replace("%{", "%%{")


def _block(header: str, attrs: dict[str, object], children: list[str] | None = None, indent: str = "") -> str:
    inner = indent + "  "
    lines = [f"{indent}{header} {{"]
    for key, value in attrs.items():
        if isinstance(value, bool):
            rendered = "true" if value else "false"
        elif isinstance(value, int):
            rendered = str(value)
        else:
            rendered = q(str(value))
        lines.append(f"{inner}{key} = {rendered}")
    for child in children or []:
        lines.append(child)
    lines.append(f"{indent}}}")
    return "\n".join(lines)


def awskms_seal(region: str, kms_key_id: str) -> SealStanza:
    return SealStanza("awskms", {"region": region, "kms_key_id": kms_key_id})


def seal_for(unseal: UnsealConfig, *, region: str | None = None, kms_key_id: str | None = None) -> SealStanza | None:
    """The seal stanza for an unseal type; shamir has none. awskms needs the key's region and id."""
    if unseal.type == "awskms":
        if not kms_key_id or not region:
            raise ValueError("awskms unseal needs the KMS key's region and id")
        return awskms_seal(region, kms_key_id)
    if unseal.type == "transit":
        t = unseal.transit
        assert t is not None
        params = {"address": t.address, "key_name": t.key_name, "mount_path": t.mount_path.rstrip("/") + "/"}
        if t.ca_cert:
            params["tls_ca_cert"] = f"{UNSEAL_MOUNT}/transit-ca.crt"
        if t.tls_server_name:
            params["tls_server_name"] = t.tls_server_name
        # The token is never here: Vault reads VAULT_TOKEN from the pod's environment (a Secret).
        return SealStanza("transit", params)
    return None


def render_server_hcl(names: Names, seal: SealStanza | None, *, paths: ServerPaths = ServerPaths(),
                      retry_join_addrs: list[tuple[str, str]] | None = None, ui: bool = True,
                      service_registration: bool = True, log_level: str | None = None,
                      unauthenticated_metrics: bool = False, performance_multiplier: int | None = None) -> str:
    """The full server config.

    ``retry_join_addrs`` lists (leader_api_addr, leader_tls_servername) pairs; by default one per
    replica at ``https://<release>-N.<release>-internal:8200``, verified against that same name.
    ``performance_multiplier`` scales Raft's timing (1: fastest failover; None: Vault's default, 5).
    """
    if retry_join_addrs is None:
        retry_join_addrs = [(names.pod_api_addr(i), names.pod_host(i)) for i in range(names.replicas)]
    listener = _block('listener "tcp"', {
        "address": paths.listen_address,
        "cluster_address": paths.cluster_address,
        "tls_cert_file": paths.tls_cert,
        "tls_key_file": paths.tls_key,
        "tls_client_ca_file": paths.ca_cert,
        "tls_min_version": "tls12",
    # Metrics without a token only where Prometheus scrapes them and has no token to present (dev);
    # otherwise reading sys/metrics needs a token like any other endpoint.
    }, [_block("telemetry", {"unauthenticated_metrics_access": True}, indent="  ")] if unauthenticated_metrics else [])
    joins = [
        _block("retry_join", {
            "leader_api_addr": addr,
            "leader_ca_cert_file": paths.ca_cert,
            "leader_tls_servername": server_name,
        }, indent="  ")
        for addr, server_name in retry_join_addrs
    ]
    raft: dict[str, object] = {"path": paths.data}
    if performance_multiplier is not None:
        raft["performance_multiplier"] = performance_multiplier
    storage = _block('storage "raft"', raft, joins)
    parts = [
        f"ui = {'true' if ui else 'false'}",
        "disable_mlock = true",
    ]
    if log_level:
        parts.append(f"log_level = {q(log_level)}")
    parts += [listener, storage]
    if service_registration:
        parts.append(_block('service_registration "kubernetes"', {}))
    if seal is not None:
        parts.append(_block(f"seal {q(seal.type)}", dict(seal.params)))
    parts.append(_block("telemetry", {"prometheus_retention_time": "30s", "disable_hostname": True}))
    return "\n\n".join(parts) + "\n"
