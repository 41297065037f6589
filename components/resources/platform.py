"""VaultPlatform: the whole stack, wired in the order Vault needs it. It only maps the stack config
onto each component's arguments.

cluster (namespace, TLS, unseal, chart) -> bootstrap (init, unseal in dev, the Vault provider)
-> configuration (engines, auth, policies, audit, applications) -> backups -> delivery (application
namespaces, the External Secrets Operator and its stores, cert-manager's issuer).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pulumi
import pulumi_aws as aws
import pulumi_kubernetes as k8s

from components.model import PlatformConfig, rules
from components.model.checks import duration_seconds
from components.model.names import Names
from components.providers.destroy_guard import DestroyGuard
from components.render import delivery, vault_objects
from components.render import deploy_identity as ident
from components.render import policies as pol
from components.render.aws_secret_store import AwsSecretStore
from components.render.backup_job import BackupJob
from components.render.cert_manager import VaultIssuer
from components.render.cluster_plan import ClusterPlan
from components.render.external_secrets import ExternalSecretsDelivery
from components.render.iam import AwsAccount
from components.render.images import pulled_from
from components.render.monitoring import Monitoring
from components.resources.applications import ApplicationNamespaces, ApplicationNamespacesArgs
from components.resources.aws_secret_store import AwsSecretsManagerStore, AwsSecretsManagerStoreArgs
from components.resources.backup import RaftBackup, RaftBackupArgs
from components.resources.bootstrap import DeployIdentityArgs, VaultBootstrap, VaultBootstrapArgs
from components.resources.cert_manager import CertManagerIssuer, CertManagerIssuerArgs
from components.resources.cluster import VaultCluster, VaultClusterArgs
from components.resources.dev_postgres import DevPostgres, DevPostgresArgs
from components.resources.errors import InvalidInput
from components.resources.external_secrets import ExternalSecrets, ExternalSecretsArgs
from components.resources.manifests import object_name
from components.resources.monitoring import VaultMonitoring, VaultMonitoringArgs
from components.resources.rollout import VaultRollout, VaultRolloutArgs
from components.resources.stack_config import secret_output
from components.resources.vault_configuration import (
    DevPostgresConnection,
    VaultAccess,
    VaultConfiguration,
    VaultConfigurationArgs,
)


def cluster_args(config: PlatformConfig) -> VaultClusterArgs:
    token = config.secrets.transit_unseal_token
    return VaultClusterArgs(ClusterPlan.of(config),
                            transit_unseal_token=secret_output(token) if token is not None else None)


def deploy_identity_args(config: PlatformConfig, objects: vault_objects.VaultObjects) -> DeployIdentityArgs | None:
    auths = objects.deploy_auths
    if not auths:
        return None
    return DeployIdentityArgs(
        policies={p.name: pol.render(p) for p in objects.policies if p.name in objects.identity_policy_names},
        auths=[ident.auth_payload(a) for a in auths],
        deployer_policy=ident.DEPLOYER_POLICY,
        revoke_root_token=bool(config.deploy.revoke_root_token),
        bootstrap_ttl_seconds=int(duration_seconds(config.deploy.bootstrap_token_ttl)),
        ci_login_path=next((a.path for a in auths if a.type == "jwt"), ""),
        login_audience=config.deploy.jwt.audience,
        client_secrets={a.path: secret_output(a.client_secret) for a in auths if a.client_secret is not None},
        client_secret_arns={a.path: a.client_secret_arn for a in auths if a.client_secret_arn},
    )


@dataclass(frozen=True)
class VaultEndpoint:
    """Where the program reaches Vault: the API address, the CA its certificate chains to, each pod's own
    address for unsealing (dev, Shamir), and what must exist before Vault answers there."""

    address: pulumi.Input[str]
    ca_cert_pem: pulumi.Input[str]
    unseal_addresses: Sequence[str] = ()
    wait_for: Sequence[pulumi.Resource] = ()


@dataclass(frozen=True)
class VaultSide:
    """What ``declare_vault_side`` declared. ``configuration`` is None while Vault cannot be configured
    (a PGP-encrypted root token and no token of the stack's own); ``child_options`` are the options
    of resources that use the in-stack Vault provider after the configuration."""

    bootstrap: VaultBootstrap
    configuration: VaultConfiguration | None
    child_options: pulumi.ResourceOptions | None


def moved_role_aliases(name: str, parent: pulumi.Resource) -> dict[str, list[pulumi.Alias]]:
    """The Jobs' Vault roles were children of RaftBackup and VaultRollout before VaultConfiguration
    owned every Vault object: without these aliases the move would delete the role just written."""
    return {pol.BACKUP_POLICY: [pulumi.Alias(name=f"{name}-backup-role", parent=pulumi.create_urn(
                f"{name}-backup", "vault-platform:backup:RaftBackup", parent=parent))],
            pol.ROLLOUT_POLICY: [pulumi.Alias(name=f"{name}-rollout-role", parent=pulumi.create_urn(
                f"{name}-rollout", "vault-platform:rollout:VaultRollout", parent=parent))]}


def declare_vault_bootstrap(name: str, config: PlatformConfig, endpoint: VaultEndpoint, *,
                            parent: pulumi.Resource, providers: Sequence[pulumi.ProviderResource] = (),
                            objects: vault_objects.VaultObjects | None = None) -> VaultBootstrap:
    """VaultBootstrap as declare_vault_side declares it: init, readiness, the deploy identity, the provider."""
    objects = objects or vault_objects.build(config)
    init, token = config.init, config.secrets.vault_token
    return VaultBootstrap(f"{name}-bootstrap", VaultBootstrapArgs(
        address=endpoint.address, ca_cert_pem=endpoint.ca_cert_pem,
        mode=config.unseal.mode,
        expected_peers=Names.of(config).replicas, shares=init.shares, threshold=init.threshold,
        pgp_keys=init.pgp_keys, root_token_pgp_key=init.root_token_pgp_key, init_timeout=init.timeout,
        unseal_addresses=endpoint.unseal_addresses,
        # An empty token is no token of the team's own.
        existing_token=secret_output(token) if token else None,
        wait_for=endpoint.wait_for, identity=deploy_identity_args(config, objects)),
        opts=pulumi.ResourceOptions(parent=parent, providers=list(providers)))


def declare_vault_side(name: str, config: PlatformConfig, endpoint: VaultEndpoint, *, parent: pulumi.Resource,
                       providers: Sequence[pulumi.ProviderResource] = (),
                       dev_postgres: DevPostgresConnection | None = None) -> VaultSide:
    """Everything the stack declares in Vault, as children of ``parent``: initialization, the deploy
    identity and the in-stack provider (VaultBootstrap), then every secrets engine, auth method, role,
    policy and audit device (VaultConfiguration).

    VaultPlatform calls it after the cluster; the engine tests call it with a parent of the same
    type and name against real servers, so both declare the same resources under the same URNs.
    """
    objects = vault_objects.build(config)
    bootstrap = declare_vault_bootstrap(name, config, endpoint, parent=parent, providers=providers, objects=objects)
    # A PGP-encrypted root token cannot configure anything: stop after init until the team
    # gives the stack a token of its own (docs/bootstrap-and-recovery.md).
    if bootstrap.provider is None:
        pulumi.log.warn("init.rootTokenPgpKey is set and secrets.vaultToken is not: Vault is initialized but "
                        "not configured. Decrypt the root token, create an admin token, set it with `pulumi "
                        "config set --secret --path secrets.vaultToken` and run `pulumi up` again.", parent)
        return VaultSide(bootstrap, None, None)
    # Every Vault resource goes through the in-stack provider, and only after init.
    vault_child = pulumi.ResourceOptions(parent=parent, providers=[*providers, bootstrap.provider],
                                         depends_on=[bootstrap])
    assert bootstrap.token_file is not None
    access = VaultAccess(endpoint.address, endpoint.ca_cert_pem, bootstrap.token_file,
                         login_path=bootstrap.login_path, login_audience=bootstrap.login_audience)
    configuration = VaultConfiguration(
        f"{name}-config", VaultConfigurationArgs(objects, protect_keys=config.is_prod, dev_postgres=dev_postgres,
                                                 vault_access=access,
                                                 role_aliases=moved_role_aliases(name, parent)),
        opts=vault_child)
    return VaultSide(bootstrap, configuration, vault_child)


# `make teardown` sets this to throw a dev stack away: the program then protects nothing.
TEARDOWN_ENV = "VAULT_PLATFORM_TEARDOWN"


def teardown_options(config: PlatformConfig, env: Mapping[str, str]) -> pulumi.ResourceOptions | None:
    """Options for the platform when a tear-down was asked for (``TEARDOWN_ENV=1``): no resource of it
    is protected. Refused for prod, where a destroy must stop at the DestroyGuard."""
    if env.get(TEARDOWN_ENV, "") in ("", "0"):
        return None
    if config.is_prod:
        raise pulumi.RunError(f"{TEARDOWN_ENV} is set, but this is a prod stack: the program never tears prod down. "
                              "Retiring prod is a deliberate procedure (docs/bootstrap-and-recovery.md).")

    def unprotect(args: pulumi.ResourceTransformationArgs) -> pulumi.ResourceTransformationResult:
        return pulumi.ResourceTransformationResult(
            args.props, pulumi.ResourceOptions.merge(args.opts, pulumi.ResourceOptions(protect=False)))

    return pulumi.ResourceOptions(transformations=[unprotect])


def guard_against_destroy(name: str, parent: pulumi.Resource, everything: Sequence[pulumi.Resource]) -> DestroyGuard:
    """The DestroyGuard (components/providers/destroy_guard.py): after ``everything``, protected."""
    return DestroyGuard(f"{name}-destroy-guard", stack_description=f"{pulumi.get_project()}/{pulumi.get_stack()}",
                        opts=pulumi.ResourceOptions(parent=parent, protect=True, depends_on=list(everything)))


class VaultPlatform(pulumi.ComponentResource):
    """The whole platform from one validated stack config.

    Outputs: everything the stack exports (``exports``, by export name), registered as this
    component's outputs; the ones every program needs are also typed attributes below. The
    components it made are attributes too (``cluster``, ``bootstrap``, ``configuration``, ...).
    """

    exports: dict[str, pulumi.Input]
    """Everything the stack exports, by export name (registered as this component's outputs)."""
    namespace: pulumi.Output[str]
    """The Vault namespace."""
    api_address: pulumi.Output[str]
    """The https address `pulumi up` reaches Vault at (``api.address``)."""
    ca_certificate: pulumi.Output[str]
    """PEM of the CA that signed the server certificate: what a client trusts."""
    applications: dict[str, dict]
    """Per application, what its pods need: annotations, volumes, its ExternalSecret."""
    k8s_provider: k8s.Provider
    """The Kubernetes provider (kubernetes.context) every component gets through its opts."""
    aws_provider: aws.Provider | None
    """The AWS provider (aws.region, with the stack's default tags), when there is an aws section."""
    cluster: VaultCluster
    """The Vault servers, their TLS and unseal, the chart and the API Services."""
    monitoring: VaultMonitoring | None
    """The ServiceMonitor, PrometheusRule and dashboard, when any of them is asked for."""
    dev_postgres: DevPostgres | None
    """A dev stack's throwaway PostgreSQL (database.devPostgres)."""
    bootstrap: VaultBootstrap
    """Initialization, the deploy identity and the in-stack Vault provider."""
    configuration: VaultConfiguration | None
    """Everything the stack declares in Vault; None while Vault cannot be configured (a PGP-encrypted
    root token and no token of the stack's own)."""
    configure_vault: bool
    """Whether this run configures Vault (``configuration`` is not None)."""
    backup: RaftBackup | None
    """Scheduled Raft snapshots (backup.enabled), once Vault is configured."""
    rollout: VaultRollout | None
    """The rolling restart after a change to the server pods (cluster.rollout.enabled)."""
    application_namespaces: ApplicationNamespaces
    """The application namespaces, ready for the injector."""
    external_secrets: ExternalSecrets | None
    """The External Secrets Operator, its stores and ExternalSecrets, when an application or the
    transition store uses them."""
    aws_secret_store: AwsSecretsManagerStore | None
    """The AWS Secrets Manager transition store (migration.awsSecretsManager)."""
    cert_manager: CertManagerIssuer | None
    """cert-manager's Issuers on the PKI engine (certManager.enabled)."""
    destroy_guard: DestroyGuard
    """Stops a `pulumi destroy` of the stack (protected), after everything else."""

    def __init__(self, name: str, config: PlatformConfig, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vault-platform:index:VaultPlatform", name, None, opts)
        for warning in rules.warnings(config):
            pulumi.log.warn(warning, self)
        self.k8s_provider = k8s.Provider(
            "k8s",
            context=config.kubernetes.context or None,
            enable_server_side_apply=True,
            opts=pulumi.ResourceOptions(parent=self),
        )
        self.aws_provider = None
        if config.aws is not None:
            self.aws_provider = aws.Provider(
                "aws", region=config.aws.region,
                default_tags=aws.ProviderDefaultTagsArgs(tags={**dict(config.aws.tags), "managed-by": "pulumi"}),
                opts=pulumi.ResourceOptions(parent=self))
        providers = [p for p in (self.k8s_provider, self.aws_provider) if p is not None]
        child = pulumi.ResourceOptions(parent=self, providers=providers)

        clustering = cluster_args(config)
        self.cluster = VaultCluster(f"{name}-cluster", clustering, opts=child)

        self.monitoring = None
        m = config.monitoring
        if config.cluster.service_monitor or m.prometheus_rule or m.grafana_dashboard:
            self.monitoring = VaultMonitoring(f"{name}-monitoring", VaultMonitoringArgs(
                Monitoring.of(config), self.cluster.namespace, service_monitor=config.cluster.service_monitor,
                prometheus_rule=m.prometheus_rule, grafana_dashboard=m.grafana_dashboard,
                wait_for=(self.cluster.release,)), opts=child)

        self.dev_postgres = None
        dev_connection = None
        # database.enabled: false switches the engine off with its settings kept, the dev database included.
        if config.database.enabled and config.database.dev_postgres:
            postgres_image = pulled_from(config.database.dev_postgres_image, config.images.registry)
            self.dev_postgres = DevPostgres(f"{name}-dev-postgres", DevPostgresArgs(self.cluster.namespace,
                                                                                    image=postgres_image),
                                            opts=pulumi.ResourceOptions.merge(
                                                child, pulumi.ResourceOptions(depends_on=[self.cluster])))
            dev_connection = DevPostgresConnection(self.dev_postgres.connection_url, self.dev_postgres.password,
                                                   wait_for=(self.dev_postgres,))

        # The cluster, and with it the API Service and (route53) the record for its name, comes first.
        vault_side = declare_vault_side(
            name, config, VaultEndpoint(config.api.address, self.cluster.ca_cert_pem,
                                        clustering.plan.api.unseal_addresses, wait_for=(self.cluster,)),
            parent=self, providers=providers, dev_postgres=dev_connection)
        self.bootstrap = vault_side.bootstrap
        self.configuration = vault_side.configuration
        self.configure_vault = self.configuration is not None
        vault_child = vault_side.child_options

        self.backup = None
        self.rollout = None
        if self.configuration is not None and vault_child is not None:
            after_configuration = pulumi.ResourceOptions.merge(
                vault_child, pulumi.ResourceOptions(depends_on=[self.configuration]))
            if config.backup.enabled:
                self.backup = RaftBackup(
                    f"{name}-backup", RaftBackupArgs(BackupJob.of(config), self.cluster.namespace,
                                                     aws=AwsAccount.of(config.aws) if config.aws else None),
                    opts=after_configuration)
            rollout_job = clustering.plan.rollout
            if rollout_job is not None and self.cluster.rollout_access is not None:
                # Last: after the release changed the pod template and Vault is configured (its role
                # and policy), restart the pods that still run the old one.
                shamir = config.unseal.mode == "shamir"
                threshold = config.init.threshold
                keys = self.bootstrap.unseal_keys.apply(lambda k: list(k or [])[:threshold]) if shamir else None
                self.rollout = VaultRollout(
                    f"{name}-rollout",
                    VaultRolloutArgs(rollout_job, self.cluster.namespace,
                                     self.cluster.pod_template_trigger, unseal_keys=keys,
                                     wait_for=(self.cluster, self.configuration, self.cluster.rollout_access)),
                    opts=after_configuration)

        # Secrets to workloads: namespaces ready for the injector, the External Secrets Operator and its
        # stores, cert-manager's issuer. Their Vault roles come with the configuration above.
        after_vault = pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(
            depends_on=[self.cluster, *([self.configuration] if self.configuration is not None else [])]))
        self.application_namespaces = ApplicationNamespaces(
            f"{name}-apps", ApplicationNamespacesArgs(delivery.namespace_plans(config), clustering.plan.names,
                                                      self.cluster.ca_cert_pem), opts=child)
        self.external_secrets = None
        transition = config.migration.aws_secrets_manager
        if transition.enabled and config.aws is None:
            raise InvalidInput("migration.awsSecretsManager", "needs the aws section")
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
        self.aws_secret_store = None
        if store is not None:
            assert self.aws_provider is not None
            self.aws_secret_store = AwsSecretsManagerStore(
                f"{name}-aws-secret-store", AwsSecretsManagerStoreArgs(store, config.cluster.release_name),
                opts=pulumi.ResourceOptions.merge(child, pulumi.ResourceOptions(
                    depends_on=[self.external_secrets] if self.external_secrets else [])))
        self.cert_manager = None
        if config.cert_manager.enabled:
            self.cert_manager = CertManagerIssuer(
                f"{name}-cert-manager", CertManagerIssuerArgs(VaultIssuer.of(config), self.cluster.ca_cert_pem),
                opts=pulumi.ResourceOptions.merge(after_vault, pulumi.ResourceOptions(
                    depends_on=[self.application_namespaces])))

        self.namespace = self.cluster.namespace
        self.api_address = self.cluster.api_address
        self.ca_certificate = self.cluster.ca_cert_pem
        self.applications = {app.name: delivery.application_export(config, app) for app in config.applications}
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
        self.exports["applications"] = self.applications
        if self.cert_manager is not None:
            self.exports["certManagerIssuer"] = self.cert_manager.issuer_name
        if self.aws_secret_store is not None:
            self.exports.update(self.aws_secret_store.exports)
        if self.rollout is not None:
            self.exports["rolloutJob"] = object_name(self.rollout.job)
        components = [c for c in (self.cluster, self.bootstrap, self.configuration, self.monitoring, self.dev_postgres,
                                  self.backup, self.rollout, self.application_namespaces, self.external_secrets,
                                  self.aws_secret_store, self.cert_manager) if c is not None]
        self.destroy_guard = guard_against_destroy(name, self, components)
        self.register_outputs(dict(self.exports))
