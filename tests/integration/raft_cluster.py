"""A 3-node Raft cluster started from the server HCL the cluster component renders for the pods,
rewritten only where loopback differs from Kubernetes (addresses, file paths), auto-unsealed through
transit by a 4th server. Used by the tests and by benchmarks/cluster_failover.py.
"""

from __future__ import annotations

import pathlib
import time
from dataclasses import dataclass, field

from components.model.names import Names
from components.render.server_hcl import SealStanza, ServerPaths, render_server_hcl
from tests.integration import servers

TRANSIT_KEY = "autounseal"


@dataclass
class RaftCluster:
    transit: servers.VaultProcess | None
    transit_token: str
    nodes: list[servers.VaultProcess]
    tls: servers.TLSFiles
    names: Names
    hcl: list[str] = field(default_factory=list)

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


def start_transit_server(binary, workdir: pathlib.Path) -> tuple[servers.VaultProcess, str]:
    """The 4th server: a dev Vault with a transit key and a token that may only use it."""
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
                  unauthenticated_metrics: bool = False) -> RaftCluster:
    """``auto_unseal=False`` gives the dev stack's shape: Shamir, no seal stanza, unsealed by VaultInit."""
    names = Names("vault", "vault", replicas)
    transit, transit_token = start_transit_server(binary, workdir) if auto_unseal else (None, "")
    pod_names = [names.pod_host(i) for i in range(replicas)]
    tls = servers.make_test_tls(workdir / "tls", dns_names=names.server_dns_names())
    ports = [(servers.free_port(), servers.free_port()) for _ in range(replicas)]
    # The pods reach each other by name; on loopback each name becomes 127.0.0.1:<its port>, while
    # the TLS server name stays the pod's, exactly as in the rendered config.
    joins = [(f"https://127.0.0.1:{api}", pod_names[i]) for i, (api, _) in enumerate(ports)]
    seal = SealStanza("transit", {"address": transit.api_addr, "key_name": TRANSIT_KEY,
                                  "mount_path": "transit/"}) if transit else None
    nodes: list[servers.VaultProcess] = []
    cluster = RaftCluster(transit, transit_token, nodes, tls, names)
    try:
        for i, (api_port, cluster_port) in enumerate(ports):
            node_dir = workdir / names.pod(i)
            paths = ServerPaths(tls_cert=tls.cert, tls_key=tls.key, ca_cert=tls.ca_cert,
                                data=str(node_dir / "data"), listen_address=f"127.0.0.1:{api_port}",
                                cluster_address=f"127.0.0.1:{cluster_port}")
            hcl = render_server_hcl(names, seal, paths=paths, retry_join_addrs=joins, service_registration=False,
                                    unauthenticated_metrics=unauthenticated_metrics)
            cluster.hcl.append(hcl)
            (node_dir / "data").mkdir(parents=True, exist_ok=True)
            node = servers.VaultProcess(
                binary, node_dir, api_addr=f"https://127.0.0.1:{api_port}", config_hcl=hcl, ca_cert=tls.ca_cert,
                data_dir=node_dir / "data", name=names.pod(i),
                # What the chart sets as environment in each pod; the transit token comes from a Secret.
                env={"VAULT_API_ADDR": f"https://127.0.0.1:{api_port}",
                     "VAULT_CLUSTER_ADDR": f"https://127.0.0.1:{cluster_port}",
                     "VAULT_RAFT_NODE_ID": names.pod(i),
                     **({"VAULT_TOKEN": transit_token} if transit else {})},
            )
            node.start()
            nodes.append(node)
        for node in nodes:
            node.wait_until_responding(timeout=60)
    except Exception:
        cluster.stop()
        raise
    return cluster
