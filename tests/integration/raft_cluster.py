"""A Raft cluster started from the server HCL the cluster component renders for the pods, rewritten
only where loopback differs from Kubernetes (addresses, file paths), auto-unsealed through transit by
one more server. Used by the tests and by benchmarks/cluster_failover.py.
"""

from __future__ import annotations

import pathlib
import time
from dataclasses import dataclass, field

from components.model.names import Names
from components.render.server_hcl import SealStanza, ServerPaths, render_server_hcl
from tests.integration import servers

TRANSIT_KEY = "autounseal"
# What the prod stack renders (cluster.raft.performanceMultiplier); the tests run the prod timing.
PROD_PERFORMANCE_MULTIPLIER = 1


@dataclass
class RaftCluster:
    transit: servers.VaultProcess | None
    transit_token: str
    nodes: list[servers.VaultProcess]
    tls: servers.TLSFiles
    names: Names
    hcl: list[str] = field(default_factory=list)
    # (api port, cluster port) of each node, and what its HCL is rendered from.
    ports: list[tuple[int, int]] = field(default_factory=list)
    seal: SealStanza | None = None
    unauthenticated_metrics: bool = False
    performance_multiplier: int | None = PROD_PERFORMANCE_MULTIPLIER
    workdir: pathlib.Path = field(default_factory=pathlib.Path)
    # More environment for every node (e.g. SSL_CERT_FILE, so a node trusts a test OIDC issuer).
    node_env: dict[str, str] = field(default_factory=dict)
    # What each node finds as its pod's service account (VaultProcess.service_account); None: nothing.
    service_account: pathlib.Path | None = None

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()
        if self.transit is not None:
            self.transit.stop()

    def leader(self, timeout: float = 60.0) -> servers.VaultProcess:
        deadline = time.monotonic() + timeout
        for _ in range(int(timeout * 4) + 1):
            for node in self.nodes:
                if node.is_running():
                    try:
                        if servers.health(node.api_addr, ca=self.tls.ca_cert).get("_status") == 200:
                            return node
                    except Exception:  # noqa: S112 - a node that is down or restarting is not the leader
                        continue
            if time.monotonic() > deadline:
                break
            time.sleep(0.25)
        raise RuntimeError(f"no active node within {timeout}s")

    def joins(self) -> list[tuple[str, str]]:
        # The pods reach each other by name; on loopback each name becomes 127.0.0.1:<its port>, while
        # the TLS server name stays the pod's, exactly as in the rendered config.
        return [(f"https://127.0.0.1:{api}", self.names.pod_host(i)) for i, (api, _) in enumerate(self.ports)]

    def render(self, i: int, tls: servers.TLSFiles | None = None, performance_multiplier: int | None = None,
               node_id: str | None = None) -> str:
        """Node i's config as the chart would run it, with ``tls`` files (default: the cluster's)."""
        tls = tls or self.tls
        api_port, cluster_port = self.ports[i]
        node_dir = self.workdir / (node_id or self.names.pod(i))
        paths = ServerPaths(tls_cert=tls.cert, tls_key=tls.key, ca_cert=tls.ca_cert, data=str(node_dir / "data"),
                            listen_address=f"127.0.0.1:{api_port}", cluster_address=f"127.0.0.1:{cluster_port}")
        multiplier = self.performance_multiplier if performance_multiplier is None else performance_multiplier
        return render_server_hcl(self.names, self.seal, paths=paths, retry_join_addrs=self.joins(),
                                 service_registration=False, unauthenticated_metrics=self.unauthenticated_metrics,
                                 performance_multiplier=multiplier)

    def add_node(self, binary, i: int, node_id: str | None = None) -> servers.VaultProcess:
        """Start node ``i`` (ports allotted already), under ``node_id`` (default: its pod name)."""
        api_port, cluster_port = self.ports[i]
        node_id = node_id or self.names.pod(i)
        node_dir = self.workdir / node_id
        hcl = servers.flavor_hcl(binary, self.render(i, node_id=node_id))
        (node_dir / "data").mkdir(parents=True, exist_ok=True)
        node = servers.VaultProcess(
            binary, node_dir, api_addr=f"https://127.0.0.1:{api_port}", config_hcl=hcl, ca_cert=self.tls.ca_cert,
            data_dir=node_dir / "data", name=node_id, service_account=self.service_account,
            # What the chart sets as environment in each pod; the transit token comes from a Secret.
            env={"VAULT_API_ADDR": f"https://127.0.0.1:{api_port}",
                 "VAULT_CLUSTER_ADDR": f"https://127.0.0.1:{cluster_port}",
                 "VAULT_RAFT_NODE_ID": node_id,
                 **({"VAULT_TOKEN": self.transit_token} if self.transit else {}), **self.node_env},
        )
        node.start()
        return node


def start_transit_server(binary, workdir: pathlib.Path) -> tuple[servers.VaultProcess, str]:
    """The extra server: a dev Vault with a transit key and a token that may only use it."""
    transit = servers.start_dev_server(binary, workdir, name="transit")
    root = servers.DEV_ROOT_TOKEN
    servers.api("POST", transit.api_addr, "sys/mounts/transit", token=root, json={"type": "transit"})
    servers.api("POST", transit.api_addr, f"transit/keys/{TRANSIT_KEY}", token=root, json={})
    policy = (f'path "transit/encrypt/{TRANSIT_KEY}" {{ capabilities = ["update"] }}\n'
              f'path "transit/decrypt/{TRANSIT_KEY}" {{ capabilities = ["update"] }}\n')
    servers.api("PUT", transit.api_addr, "sys/policies/acl/autounseal", token=root, json={"policy": policy})
    token = servers.api("POST", transit.api_addr, "auth/token/create-orphan", token=root,
                        json={"policies": ["autounseal"], "period": "24h", "no_default_policy": True})
    return transit, token["auth"]["client_token"]


def start_cluster(binary, workdir: pathlib.Path, replicas: int = 3, auto_unseal: bool = True,
                  unauthenticated_metrics: bool = False,
                  performance_multiplier: int | None = PROD_PERFORMANCE_MULTIPLIER,
                  spare_ports: int = 0, node_env: dict[str, str] | None = None,
                  service_account: pathlib.Path | None = None) -> RaftCluster:
    """``auto_unseal=False`` gives the dev stack's shape: Shamir, no seal stanza, unsealed by VaultInit.
    ``spare_ports``: ports allotted for nodes started later (a replacement) beyond ``replicas``."""
    names = Names("vault", "vault", replicas)
    transit, transit_token = start_transit_server(binary, workdir) if auto_unseal else (None, "")
    tls = servers.make_test_tls(workdir / "tls", dns_names=names.server_dns_names())
    seal = SealStanza("transit", {"address": transit.api_addr, "key_name": TRANSIT_KEY,
                                  "mount_path": "transit/"}) if transit else None
    cluster = RaftCluster(transit, transit_token, [], tls, names, seal=seal,
                          unauthenticated_metrics=unauthenticated_metrics,
                          performance_multiplier=performance_multiplier, workdir=workdir,
                          node_env=dict(node_env or {}), service_account=service_account)
    cluster.ports = [(servers.free_port(), servers.free_port()) for _ in range(replicas + spare_ports)]
    try:
        for i in range(replicas):
            cluster.hcl.append(cluster.render(i))
            cluster.nodes.append(cluster.add_node(binary, i))
        for node in cluster.nodes:
            node.wait_until_responding(timeout=60)
    except Exception:
        cluster.stop()
        raise
    return cluster
