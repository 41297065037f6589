"""The id under which `pulumi import` adopts a Vault object the stack declares, from the resource's
type and inputs (the formats each pulumi_vault resource documents under "Import").

After a lost state, every mount, auth method and audit device already exists in Vault and `pulumi
up` fails with "path is already in use"; importing them is the way back (docs/bootstrap-and-recovery.md).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

_IDS: dict[str, Callable[[Mapping[str, Any]], str]] = {
    "vault:index/mount:Mount": lambda i: i["path"],
    "vault:index/authBackend:AuthBackend": lambda i: i["path"],
    "vault:index/audit:Audit": lambda i: i["path"],
    "vault:index/policy:Policy": lambda i: i["name"],
    "vault:kubernetes/authBackendConfig:AuthBackendConfig": lambda i: f"auth/{i['backend']}/config",
    "vault:kubernetes/authBackendRole:AuthBackendRole": lambda i: f"auth/{i['backend']}/role/{i['roleName']}",
    "vault:database/secretBackendConnection:SecretBackendConnection": lambda i: f"{i['backend']}/config/{i['name']}",
    "vault:database/secretBackendRole:SecretBackendRole": lambda i: f"{i['backend']}/roles/{i['name']}",
    "vault:kv/secretBackendV2:SecretBackendV2": lambda i: f"{i['mount']}/config",
    "vault:kv/secretV2:SecretV2": lambda i: f"{i['mount']}/data/{i['name']}",
    "vault:pkiSecret/secretBackendRole:SecretBackendRole": lambda i: f"{i['backend']}/roles/{i['name']}",
    "vault:pkiSecret/secretBackendConfigUrls:SecretBackendConfigUrls": lambda i: f"{i['backend']}/config/urls",
    "vault:transit/secretBackendKey:SecretBackendKey": lambda i: f"{i['backend']}/keys/{i['name']}",
    "vault:index/raftAutopilot:RaftAutopilot": lambda _: "sys/storage/raft/autopilot/configuration",
}

# The provider cannot import these: they are operations (generate a CA, sign a CSR) more than objects.
# Left out of an import, the next `pulumi up` would run them again and give the PKI mounts a new
# issuer, so a lost state with PKI is best recovered from the state backend's own backup.
NOT_IMPORTABLE = {
    "vault:pkiSecret/secretBackendRootCert:SecretBackendRootCert": "generating a root CA cannot be imported",
    "vault:pkiSecret/secretBackendIntermediateCertRequest:SecretBackendIntermediateCertRequest":
        "an intermediate CSR cannot be imported",
    "vault:pkiSecret/secretBackendRootSignIntermediate:SecretBackendRootSignIntermediate":
        "signing the intermediate cannot be imported",
    "vault:pkiSecret/secretBackendIntermediateSetSigned:SecretBackendIntermediateSetSigned":
        "setting the signed intermediate cannot be imported",
    # Not an operation, but the provider documents no import for it. Left out, the next `pulumi up`
    # writes the same auto-tidy settings again, which changes nothing.
    "vault:pkiSecret/backendConfigAutoTidy:BackendConfigAutoTidy":
        "the provider documents no import for it; the next pulumi up writes the same settings again",
}


def import_id(resource_type: str, inputs: Mapping[str, Any]) -> str | None:
    """The import id of a Vault resource, or None for a type the provider cannot import."""
    if resource_type in NOT_IMPORTABLE:
        return None
    if resource_type not in _IDS:
        raise KeyError(f"no import id known for {resource_type}")
    return _IDS[resource_type](inputs)
