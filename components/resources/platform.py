"""VaultPlatform: the whole stack, wired in the order Vault needs it. It only maps the stack config
onto each component's arguments.

cluster (namespace, TLS, unseal, chart) -> bootstrap (init, unseal in dev, the Vault provider)
-> configuration (engines, auth, policies, audit, applications) -> backups -> delivery (application
namespaces, the External Secrets Operator and its stores, cert-manager's issuer).
"""

from __future__ import annotations

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.model import PlatformConfig
from components.model.checks import duration_seconds
from components.render import delivery, vault_objects
from components.render import deploy_identity as ident
from components.render import policies as pol
from components.render.aws_secret_store import AwsSecretStore
from components.render.backup_job import BackupJob
from components.render.cert_manager import VaultIssuer
from components.render.external_secrets import ExternalSecretsDelivery
from components.render.images import pulled_from
from components.render.monitoring import Monitoring
from components.resources.applications import ApplicationNamespaces, ApplicationNamespacesArgs
from components.resources.aws_secret_store import AwsSecretsManagerStore, AwsSecretsManagerStoreArgs
from components.resources.backup import RaftBackup, RaftBackupArgs
from components.resources.bootstrap import DeployIdentityArgs, VaultBootstrap, VaultBootstrapArgs
from components.resources.cert_manager import CertManagerIssuer, CertManagerIssuerArgs
from components.resources.cluster import VaultCluster, VaultClusterArgs
from components.resources.dev_postgres import DevPostgres, DevPostgresArgs
from components.resources.external_secrets import ExternalSecrets, ExternalSecretsArgs
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
        api_client_namespaces=delivery.api_client_namespaces(config),
        kubernetes_auth_path=config.kubernetes_auth.path, token_audience=config.kubernetes_auth.audience,
        metrics_from=(config.monitoring.prometheus_namespace,) if config.cluster.service_monitor else (),
        image_registry=config.images.registry)


def deploy_identity_args(config: PlatformConfig, objects: vault_objects.VaultObjects) -> DeployIdentityArgs | None:
    auths = objects.deploy_auths
    if not auths:
        return None
    names = (ident.DEPLOYER_POLICY, ident.PREVIEWER_POLICY)
    return DeployIdentityArgs(
        policies={p.name: pol.render(p) for p in objects.policies if p.name in names},
        auths=[ident.auth_payload(a) for a in auths],
        deployer_policy=ident.DEPLOYER_POLICY,
        revoke_root_token=bool(config.deploy.revoke_root_token),
        bootstrap_ttl_seconds=int(duration_seconds(config.deploy.bootstrap_token_ttl)),
        ci_login_path=next((a.path for a in auths if a.type == "jwt"), ""),
        client_secrets={a.path: a.client_secret for a in auths if a.client_secret is not None},
    )


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
        objects = vault_objects.build(config)
        identity = deploy_identity_args(config, objects)
        self.cluster = VaultCluster(f"{name}-cluster", clustering, self.aws_provider, opts=child)
        self.bootstrap = VaultBootstrap(f"{name}-bootstrap", VaultBootstrapArgs(
            address=config.api.address, ca_cert_pem=self.cluster.ca_cert_pem,
            mode="shamir" if config.unseal.type == "shamir" else "auto",
            expected_peers=clustering.names.replicas, init=config.init,
            unseal_addresses=clustering.pod_unseal_addresses, existing_token=config.secrets.vault_token,
            # The cluster, and with it the API Service and (route53) the record for its name.
            wait_for=[self.cluster], identity=identity), opts=child)

        self.monitoring: VaultMonitoring | None = None
        m = config.monitoring
        if config.cluster.service_monitor or m.prometheus_rule or m.grafana_dashboard:
            self.monitoring = VaultMonitoring(f"{name}-monitoring", VaultMonitoringArgs(
                Monitoring.of(config), self.cluster.namespace, service_monitor=config.cluster.service_monitor,
                prometheus_rule=m.prometheus_rule, grafana_dashboard=m.grafana_dashboard,
                wait_for=(self.cluster.release,)), opts=child)

        self.dev_postgres: DevPostgres | None = None
        if config.database.dev_postgres:
            postgres_image = pulled_from(config.database.dev_postgres_image, config.images.registry)
            self.dev_postgres = DevPostgres(f"{name}-dev-postgres", DevPostgresArgs(self.cluster.namespace,
                                                                                    image=postgres_image),
                                            opts=pulumi.ResourceOptions.merge(
                                                child, pulumi.ResourceOptions(depends_on=[self.cluster])))

        self.configuration: VaultConfiguration | None = None
        self.backup: RaftBackup | None = None
        self.rollout: VaultRollout | None = None
        # A PGP-encrypted root token cannot configure anything: stop after init until the team
        # gives the stack a token of its own (docs/bootstrap-and-recovery.md).
        self.configure_vault = self.bootstrap.provider is not None
        if self.bootstrap.provider is None:
            pulumi.log.warn("init.rootTokenPgpKey is set and secrets.vaultToken is not: Vault is initialized but "
                            "not configured. Decrypt the root token, create an admin token, set it with `pulumi "
                            "config set --secret --path secrets.vaultToken` and run `pulumi up` again.", self)
        else:
            # Every Vault resource goes through the in-stack provider, and only after init.
            vault_provider = self.bootstrap.provider
            vault_child = pulumi.ResourceOptions(parent=self, providers=[*providers, vault_provider],
                                                 depends_on=[self.bootstrap])
            dev_connection = None
            if self.dev_postgres is not None:
                dev_connection = DevPostgresConnection(self.dev_postgres.connection_url, self.dev_postgres.password,
                                                       wait_for=(self.dev_postgres,))
            access = VaultAccess(config.api.address, self.cluster.ca_cert_pem, self.bootstrap.token,
                                 login_path=identity.ci_login_path if identity else "")
            self.configuration = VaultConfiguration(
                f"{name}-config", VaultConfigurationArgs(objects, protect_keys=config.is_prod,
                                                         dev_postgres=dev_connection, vault_access=access),
                vault_provider, opts=vault_child)
            if config.backup.enabled:
                self.backup = RaftBackup(
                    f"{name}-backup",
                    RaftBackupArgs(BackupJob.of(config), self.cluster.namespace,
                                   self.configuration.kubernetes_auth_path, aws=config.aws),
                    vault_provider, self.aws_provider,
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

        # Secrets to workloads: namespaces ready for the injector, the External Secrets Operator and its
        # stores, cert-manager's issuer. Their Vault roles come with the configuration above.
        after_vault = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(
            depends_on=[self.cluster, *([self.configuration] if self.configuration is not None else [])]))
        self.application_namespaces = ApplicationNamespaces(
            f"{name}-apps", ApplicationNamespacesArgs(delivery.namespace_plans(config), clustering.names,
                                                      self.cluster.ca_cert_pem), opts=child)
        self.external_secrets: ExternalSecrets | None = None
        transition = config.migration.aws_secrets_manager
        if transition.enabled and config.aws is None:
            raise ValueError("migration.awsSecretsManager needs the aws section")
        store = AwsSecretStore(transition, config.aws) if transition.enabled and config.aws else None
        # The operator also serves the transition store, which reads AWS as the operator's service account.
        if any(app.uses_external_secrets for app in config.applications) or store is not None:
            self.external_secrets = ExternalSecrets(
                f"{name}-external-secrets",
                ExternalSecretsArgs(ExternalSecretsDelivery.of(config), self.cluster.ca_cert_pem,
                                    timeout=config.cluster.await_timeout,
                                    aws_role_arn=store.role_arn(config.cluster.release_name, pulumi.get_stack())
                                    if store else None),
                opts=pulumi.ResourceOptions.merge(after_vault, pulumi.ResourceOptions(
                    depends_on=[self.application_namespaces])))
        # The transition store: its IRSA role, and the ClusterSecretStore once the operator's CRDs exist.
        self.aws_secret_store: AwsSecretsManagerStore | None = None
        if store is not None:
            assert self.aws_provider is not None
            self.aws_secret_store = AwsSecretsManagerStore(
                f"{name}-aws-secret-store", AwsSecretsManagerStoreArgs(store, config.cluster.release_name),
                self.aws_provider, opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(
                    depends_on=[self.external_secrets] if self.external_secrets else [])))
        self.cert_manager: CertManagerIssuer | None = None
        if config.cert_manager.enabled:
            self.cert_manager = CertManagerIssuer(
                f"{name}-cert-manager", CertManagerIssuerArgs(VaultIssuer.of(config), self.cluster.ca_cert_pem),
                opts=after_vault)

        self.exports = {
            "namespace": self.cluster.namespace,
            "apiAddress": self.cluster.api_address,
            "caCertificate": self.cluster.ca_cert_pem,
            "unsealKeys": self.bootstrap.unseal_keys,
        }
        if self.bootstrap.revokes_root_token and self.bootstrap.identity is not None:
            # Revoked in this run: no root token in the outputs, only the fact.
            self.exports["rootTokenRevoked"] = self.bootstrap.identity.root_token_revoked
        else:
            self.exports["rootToken"] = self.bootstrap.root_token
        if self.cluster.unseal_kms_key_arn is not None:
            self.exports["unsealKmsKeyArn"] = self.cluster.unseal_kms_key_arn
        if self.cluster.api_load_balancer_hostname is not None:
            self.exports["apiLoadBalancerHostname"] = self.cluster.api_load_balancer_hostname
        if self.backup is not None:
            self.exports.update(self.backup.exports)
        # Per application: its pod annotations and volumes (injector), its ExternalSecret (the operator).
        self.exports["applications"] = {app.name: delivery.application_export(config, app)
                                        for app in config.applications}
        if self.cert_manager is not None:
            self.exports["certManagerIssuer"] = self.cert_manager.issuer_name
        if self.aws_secret_store is not None:
            self.exports.update(self.aws_secret_store.exports)
        if self.rollout is not None:
            self.exports["rolloutJob"] = self.rollout.job.metadata.name
        self.register_outputs(dict(self.exports))
