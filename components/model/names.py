"""Names the chart and the cluster give things, derived in one place so every builder agrees."""

from __future__ import annotations

from dataclasses import dataclass

from components.model.platform import ApiConfig, PlatformConfig

TLS_MOUNT = "/vault/userconfig/vault-tls"
UNSEAL_MOUNT = "/vault/userconfig/vault-unseal"
DATA_PATH = "/vault/data"
API_PORT = 8200
CLUSTER_PORT = 8201
# Dev per-pod NodePorts follow the API NodePort (api.nodePort + 1 + ordinal); kind maps them to
# 127.0.0.1:8201.. so `pulumi up` can unseal each pod of a shamir dev stack.
POD_HOST_PORT_BASE = 8201

# Namespaces that always exist (or belong to the cluster): the stack never creates them.
RESERVED_NAMESPACES = ("default", "kube-system", "kube-public", "kube-node-lease")
# The label that opts a namespace in to the Agent Injector's webhook (its namespaceSelector).
INJECTION_LABEL = "vault-platform/agent-injection"
INJECTION_LABEL_VALUE = "enabled"
# Where an injected agent finds our CA: the per-namespace Secret mounted by the injector at /vault/tls.
AGENT_TLS_MOUNT = "/vault/tls"
CA_KEY = "ca.crt"
# The projected service account token volume a pod adds for its agent, and the file in it.
AGENT_TOKEN_VOLUME = "vault-token"  # noqa: S105 - a name, not a secret
AGENT_TOKEN_PATH = "token"  # noqa: S105 - a name, not a secret
# The injector renders an application's database credentials into /vault/secrets/<this>.
DATABASE_SECRET_FILE = "db"  # noqa: S105 - a name, not a secret
# Each External Secrets namespace gets a SecretStore and a service account of this name.
SECRET_STORE = "vault-kv"  # noqa: S105 - a name, not a secret


def external_secrets_role(namespace: str) -> str:
    """The Vault role and policy the External Secrets Operator uses for one namespace's applications."""
    return f"external-secrets-{namespace}"


def cert_manager_role(namespace: str) -> str:
    """The Vault role and policy of cert-manager's Issuer in one namespace."""
    return f"cert-manager-{namespace}"


@dataclass(frozen=True)
class Names:
    release: str
    namespace: str
    replicas: int

    @classmethod
    def of(cls, config: PlatformConfig) -> Names:
        assert config.cluster.replicas is not None
        return cls(config.cluster.release_name, config.kubernetes.namespace, config.cluster.replicas)

    @property
    def internal_service(self) -> str:
        return f"{self.release}-internal"

    @property
    def active_service(self) -> str:
        return f"{self.release}-active"

    @property
    def api_service(self) -> str:
        return f"{self.release}-api"

    @property
    def service_account(self) -> str:
        # fullnameOverride pins the chart's names to the release name.
        return self.release

    @property
    def tls_secret(self) -> str:
        return f"{self.release}-tls"

    @property
    def unseal_secret(self) -> str:
        return f"{self.release}-unseal"

    @property
    def ca_secret(self) -> str:
        """The Secret holding only our CA certificate, in each namespace whose pods run injected agents."""
        return f"{self.release}-ca"

    @property
    def injector_service(self) -> str:
        return f"{self.release}-agent-injector-svc"

    @property
    def injector_tls_secret(self) -> str:
        return f"{self.release}-injector-tls"

    def injector_dns_names(self) -> list[str]:
        service = self.injector_service
        return [service, f"{service}.{self.namespace}", f"{service}.{self.namespace}.svc",
                f"{service}.{self.namespace}.svc.cluster.local"]

    def pod(self, ordinal: int) -> str:
        return f"{self.release}-{ordinal}"

    def pod_host(self, ordinal: int) -> str:
        return f"{self.pod(ordinal)}.{self.internal_service}"

    def pod_api_addr(self, ordinal: int) -> str:
        return f"https://{self.pod_host(ordinal)}:{API_PORT}"

    @property
    def in_cluster_addr(self) -> str:
        return f"https://{self.active_service}.{self.namespace}.svc:{API_PORT}"

    def server_dns_names(self, extra: tuple[str, ...] = ()) -> list[str]:
        """Every name a client or a Raft peer may use to reach a server pod."""
        return server_dns_names(self.release, self.namespace, self.replicas, extra)


def server_dns_names(release: str, namespace: str, replicas: int, extra: tuple[str, ...] = ()) -> list[str]:
    names_ = Names(release, namespace, replicas)
    names = [names_.pod_host(i) for i in range(replicas)]
    names += [f"{names_.pod_host(i)}.{namespace}.svc.cluster.local" for i in range(replicas)]
    names += [f"*.{names_.internal_service}", f"*.{names_.internal_service}.{namespace}.svc",
              f"*.{names_.internal_service}.{namespace}.svc.cluster.local"]
    for service in (release, names_.active_service, names_.api_service, names_.internal_service):
        names += [service, f"{service}.{namespace}", f"{service}.{namespace}.svc",
                  f"{service}.{namespace}.svc.cluster.local"]
    names += ["localhost", *extra]
    return list(dict.fromkeys(names))

def pod_unseal_ports(unseal_mode: str, api: ApiConfig, replicas: int) -> list[tuple[int, int, str]]:
    """(ordinal, nodePort, host address) for each pod a shamir dev stack must unseal directly."""
    if unseal_mode != "shamir" or api.service_type != "NodePort":
        return []
    assert api.node_port is not None
    return [(i, api.node_port + 1 + i, f"https://127.0.0.1:{POD_HOST_PORT_BASE + i}") for i in range(replicas)]
