"""A team's own program: a Vault cluster plus its bootstrap, from vault-platform's components with
their arguments written in code. No stack file of vault-platform's, no VaultPlatform.

    cd examples/cluster-and-bootstrap && pulumi stack init dev && pulumi up

Pulumi makes the program's venv and installs requirements.txt into it: the components package from
this checkout (in your own program, a wheel or a tag of it), with its pinned dependencies.

It deploys to the current kube context (a kind cluster made from kind/dev-cluster.yaml works):
three Raft pods with TLS from the stack's own CA, initialized and unsealed (Shamir, one share) in the
same run, and a Vault provider your own resources can use.
"""

import pulumi

from components import (
    ApiConfig,
    ClusterConfig,
    ResourceAmounts,
    Resources,
    Rollout,
    UnsealConfig,
    VaultBootstrap,
    VaultBootstrapArgs,
    VaultCluster,
    VaultClusterArgs,
    cluster_plan,
)

# The settings, as the stack config would hold them, made into the plan the component declares.
plan = cluster_plan(
    "team-secrets",
    # kind/dev-cluster.yaml maps NodePort 30820 (and one port per pod after it) to 127.0.0.1.
    api=ApiConfig(address="https://127.0.0.1:8200", service_type="NodePort", node_port=30820),
    unseal=UnsealConfig(type="shamir"),
    cluster=ClusterConfig(
        release_name="team-vault",
        replicas=3,
        resources=Resources(requests=ResourceAmounts(memory="64Mi", cpu="50m")),
        # The rolling restart logs in to Vault with a role VaultConfiguration writes (VaultRollout);
        # without them, restart pods by hand (docs/day-2.md).
        rollout=Rollout(enabled=False),
    ),
)
cluster = VaultCluster("team-vault", VaultClusterArgs(plan))

bootstrap = VaultBootstrap("team-vault", VaultBootstrapArgs(
    address=cluster.api_address,
    ca_cert_pem=cluster.ca_cert_pem,
    mode="shamir",
    expected_peers=3,
    shares=1,
    threshold=1,
    init_timeout="5m",
    unseal_addresses=plan.api.unseal_addresses,
    wait_for=[cluster],
))

pulumi.export("apiAddress", cluster.api_address)
pulumi.export("caCertificate", cluster.ca_cert_pem)
pulumi.export("rootToken", bootstrap.root_token)
pulumi.export("bootstrapStatus", bootstrap.status)
