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

def pod_unseal_ports(unseal_type: str, api: ApiConfig, replicas: int) -> list[tuple[int, int, str]]:
    """(ordinal, nodePort, host address) for each pod a shamir dev stack must unseal directly."""
    if unseal_type != "shamir" or api.service_type != "NodePort":
        return []
    assert api.node_port is not None
    return [(i, api.node_port + 1 + i, f"https://127.0.0.1:{POD_HOST_PORT_BASE + i}") for i in range(replicas)]
