"""cert-manager on the PKI engine, as plain manifests: a ClusterIssuer of type vault that logs in through
Kubernetes auth as its own service account. Pure: no Pulumi, no I/O.

cert-manager requests a short token for that service account (a Role lets its controller do that for
this one service account only) with the audience ``vault://<issuer>``; the Vault role accepts only
that audience, and its policy allows ``<issuing mount>/sign/<role>`` and nothing else.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from components.model import PlatformConfig
from components.model.names import Names, cert_manager_role
from components.render import delivery
from components.render.policies import issuing_pki_path

API_VERSION = "cert-manager.io/v1"


@dataclass(frozen=True)
class VaultIssuer:
    """Everything the ClusterIssuer and its access are made from."""

    name: str
    namespace: str
    controller_service_account: str
    server: str
    sign_path: str
    auth_path: str

    @classmethod
    def of(cls, config: PlatformConfig) -> VaultIssuer:
        cm = config.cert_manager
        return cls(name=cm.issuer_name, namespace=cm.namespace,
                   controller_service_account=cm.controller_service_account, server=Names.of(config).in_cluster_addr,
                   sign_path=f"{issuing_pki_path(config)}/sign/{cm.pki_role}", auth_path=config.kubernetes_auth.path)

    def cluster_issuer(self, ca_bundle: Any) -> dict[str, Any]:
        """``ca_bundle`` is the base64 of our CA's PEM (the CRD field is bytes)."""
        return {
            "apiVersion": API_VERSION,
            "kind": "ClusterIssuer",
            "metadata": {"name": self.name, "labels": dict(delivery.LABELS)},
            "spec": {"vault": {
                "server": self.server,
                "path": self.sign_path,
                "caBundle": ca_bundle,
                "auth": {"kubernetes": {
                    "mountPath": f"/v1/auth/{self.auth_path}",
                    "role": cert_manager_role(self.name),
                    "serviceAccountRef": {"name": self.name},
                }},
            }},
        }

    def access(self) -> list[dict[str, Any]]:
        """The issuer's service account, and the Role that lets cert-manager's controller request its tokens."""
        return [delivery.service_account_manifest(self.namespace, self.name),
                *delivery.token_request_rbac(self.namespace, self.name,
                                             (self.namespace, self.controller_service_account))]
