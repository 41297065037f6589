"""cert-manager on the PKI engine, as plain manifests: one Issuer of type vault per namespace that
requests certificates, each logging in through Kubernetes auth as a service account of its own
namespace. Pure: no Pulumi, no I/O.

No ClusterIssuer: a Certificate in any namespace could use one, and get a certificate for another
namespace's Service. Each Issuer's Vault role accepts only the token cert-manager requests for that
Issuer (a Role lets its controller do that for this one service account only), with the audience
``vault://<namespace>/<issuer>``; its policy allows ``<issuing mount>/sign/<role>`` of the PKI role
bound to that namespace, which signs the namespace's own names only.
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
    """Everything the Issuers and their access are made from. ``roles``: namespace -> its PKI role."""

    name: str
    controller_namespace: str
    controller_service_account: str
    server: str
    issuing_path: str
    auth_path: str
    roles: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, config: PlatformConfig) -> VaultIssuer:
        cm = config.cert_manager
        return cls(name=cm.issuer_name, controller_namespace=cm.namespace,
                   controller_service_account=cm.controller_service_account, server=Names.of(config).in_cluster_addr,
                   issuing_path=issuing_pki_path(config), auth_path=config.kubernetes_auth.path,
                   roles=tuple((i.namespace, i.pki_role) for i in cm.issuers))

    @property
    def namespaces(self) -> tuple[str, ...]:
        return tuple(namespace for namespace, _ in self.roles)

    def issuer(self, namespace: str, ca_bundle: Any) -> dict[str, Any]:
        """The Issuer of one namespace. ``ca_bundle`` is the base64 of our CA's PEM (the CRD field is bytes)."""
        pki_role = dict(self.roles)[namespace]
        return {
            "apiVersion": API_VERSION,
            "kind": "Issuer",
            "metadata": {"name": self.name, "namespace": namespace, "labels": dict(delivery.LABELS)},
            "spec": {"vault": {
                "server": self.server,
                "path": f"{self.issuing_path}/sign/{pki_role}",
                "caBundle": ca_bundle,
                "auth": {"kubernetes": {
                    "mountPath": f"/v1/auth/{self.auth_path}",
                    "role": cert_manager_role(namespace),
                    # An Issuer's service account is in the Issuer's own namespace.
                    "serviceAccountRef": {"name": self.name},
                }},
            }},
        }

    def access(self, namespace: str) -> list[dict[str, Any]]:
        """An Issuer's service account, and the Role that lets cert-manager's controller request its tokens."""
        return [delivery.service_account_manifest(namespace, self.name),
                *delivery.token_request_rbac(namespace, self.name,
                                             (self.controller_namespace, self.controller_service_account))]
