"""VaultPlatform: the whole stack, wired in the order Vault needs it. It only maps the stack config
onto each component's arguments.

cluster (namespace, TLS, unseal, chart) -> bootstrap (init, unseal in dev, the Vault provider)
-> configuration (engines, auth, policies, audit, applications) -> backups.
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.model import PlatformConfig
from components.render import vault_objects
from components.render.backup_job import BackupJob
from components.render.monitoring import Monitoring
from components.resources.backup import RaftBackup, RaftBackupArgs
from components.resources.bootstrap import VaultBootstrap, VaultBootstrapArgs
from components.resources.cluster import VaultCluster, VaultClusterArgs
from components.resources.dev_postgres import DevPostgres, DevPostgresArgs
from components.resources.monitoring import VaultMonitoring, VaultMonitoringArgs
from components.resources.rollout import VaultRollout, VaultRolloutArgs
from components.resources.vault_configuration import (
    DevPostgresConnection,
    VaultAccess,
    VaultConfiguration,
    VaultConfigurationArgs,
)


def cluster_args(config: PlatformConfig) -> VaultClusterArgs:
    return VaultClusterArgs(
        namespace=config.kubernetes.namespace, api=config.api, unseal=config.unseal, cluster=config.cluster,
        tls=config.tls, production=config.is_prod, aws=config.aws,
        transit_unseal_token=config.secrets.transit_unseal_token,
        kubernetes_auth_path=config.kubernetes_auth.path, token_audience=config.kubernetes_auth.audience,
        metrics_from=(config.monitoring.prometheus_namespace,) if config.cluster.service_monitor else ())


class VaultPlatform(pulumi.ComponentResource):
    """Outputs: everything the stack exports (``exports``), registered as this component's outputs."""

    exports: dict[str, pulumi.Input]

    def __init__(self, name: str, config: PlatformConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vault-platform:index:VaultPlatform", name, None, opts)
        self.k8s_provider = k8s.Provider(
            "k8s",
            context=config.kubernetes.context or None,
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.aws_provider: aws.Provider | None = None
        if config.aws is not None:
            self.aws_provider = aws.Provider(
                "aws", region=config.aws.region,
                default_tags=aws.ProviderDefaultTagsArgs(tags={**dict(config.aws.tags), "managed-by": "pulumi"}),
                opts=pulumi.ResourceOptions(parent=self))
        providers = [p for p in (self.k8s_provider, self.aws_provider) if p is not None]
        child = pulumi.ResourceOptions(parent=self, providers=providers)

        clustering = cluster_args(config)
        self.cluster = VaultCluster(f"{name}-cluster", clustering, self.aws_provider, opts=child)
        self.bootstrap = VaultBootstrap(f"{name}-bootstrap", VaultBootstrapArgs(
            address=config.api.address, ca_cert_pem=self.cluster.ca_cert_pem,
            mode="shamir" if config.unseal.type == "shamir" else "auto",
            expected_peers=clustering.names.replicas, init=config.init,
            unseal_addresses=clustering.pod_unseal_addresses, existing_token=config.secrets.vault_token,
            # The cluster, and with it the API Service and (route53) the record for its name.
            wait_for=[self.cluster]), opts=child)

        self.monitoring: VaultMonitoring | None = None
        m = config.monitoring
        if config.cluster.service_monitor or m.prometheus_rule or m.grafana_dashboard:
            self.monitoring = VaultMonitoring(f"{name}-monitoring", VaultMonitoringArgs(
                Monitoring.of(config), self.cluster.namespace, service_monitor=config.cluster.service_monitor,
                prometheus_rule=m.prometheus_rule, grafana_dashboard=m.grafana_dashboard,
                wait_for=(self.cluster.release,)), opts=child)

        self.dev_postgres: DevPostgres | None = None
        if config.database.dev_postgres:
            self.dev_postgres = DevPostgres(f"{name}-dev-postgres", DevPostgresArgs(self.cluster.namespace),
                                            opts=pulumi.ResourceOptions.merge(
                                                child, pulumi.ResourceOptions(depends_on=[self.cluster])))

        self.configuration: VaultConfiguration | None = None
        self.backup: RaftBackup | None = None
        self.rollout: VaultRollout | None = None
        # A PGP-encrypted root token cannot configure anything: stop after init until the team
        # gives the stack a token of its own (docs/bootstrap-and-recovery.md).
        self.configure_vault = not (config.init.root_token_pgp_key and config.secrets.vault_token is None)
        if not self.configure_vault:
            pulumi.log.warn("init.rootTokenPgpKey is set and secrets.vaultToken is not: Vault is initialized but "
                            "not configured. Decrypt the root token, create an admin token, set it with `pulumi "
                            "config set --secret --path secrets.vaultToken` and run `pulumi up` again.", self)
        else:
            # Every Vault resource goes through the in-stack provider, and only after init.
            vault_child = pulumi.ResourceOptions(parent=self, providers=[*providers, self.bootstrap.provider],
                                                 depends_on=[self.bootstrap])
            dev_connection = None
            if self.dev_postgres is not None:
                dev_connection = DevPostgresConnection(self.dev_postgres.connection_url, self.dev_postgres.password,
                                                       wait_for=(self.dev_postgres,))
            access = VaultAccess(config.api.address, self.cluster.ca_cert_pem, self.bootstrap.token)
            self.configuration = VaultConfiguration(
                f"{name}-config", VaultConfigurationArgs(vault_objects.build(config), protect_keys=config.is_prod,
                                                         dev_postgres=dev_connection, vault_access=access),
                self.bootstrap.provider, opts=vault_child)
            if config.backup.enabled:
                self.backup = RaftBackup(
                    f"{name}-backup",
                    RaftBackupArgs(BackupJob.of(config), self.cluster.namespace,
                                   self.configuration.kubernetes_auth_path, aws=config.aws),
                    self.bootstrap.provider, self.aws_provider,
                    opts=pulumi.ResourceOptions.merge(vault_child,
                                                      pulumi.ResourceOptions(depends_on=[self.configuration])))
            if config.cluster.rollout.enabled and self.cluster.rollout_access is not None:
                # Last: after the release changed the pod template and Vault is configured (its role
                # and policy), restart the pods that still run the old one.
                shamir = config.unseal.type == "shamir"
                threshold = config.init.threshold
                keys = self.bootstrap.unseal_keys.apply(lambda k: list(k or [])[:threshold]) if shamir else None
                self.rollout = VaultRollout(
                    f"{name}-rollout",
                    VaultRolloutArgs(clustering.rollout_job(), self.cluster.namespace,
                                     self.configuration.kubernetes_auth_path, self.cluster.pod_template_trigger,
                                     unseal_keys=keys,
                                     wait_for=(self.cluster, self.configuration, self.cluster.rollout_access)),
                    self.bootstrap.provider,
                    opts=pulumi.ResourceOptions.merge(vault_child,
                                                      pulumi.ResourceOptions(depends_on=[self.configuration])))

        self.exports = {
            "namespace": self.cluster.namespace,
            "apiAddress": self.cluster.api_address,
            "caCertificate": self.cluster.ca_cert_pem,
            "rootToken": self.bootstrap.root_token,
            "unsealKeys": self.bootstrap.unseal_keys,
        }
        if self.cluster.unseal_kms_key_arn is not None:
            self.exports["unsealKmsKeyArn"] = self.cluster.unseal_kms_key_arn
        if self.cluster.api_load_balancer_hostname is not None:
            self.exports["apiLoadBalancerHostname"] = self.cluster.api_load_balancer_hostname
        if self.backup is not None:
            self.exports.update(self.backup.exports)
        if self.rollout is not None:
            self.exports["rolloutJob"] = self.rollout.job.metadata.name
        self.register_outputs(dict(self.exports))
