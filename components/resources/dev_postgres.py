"""DevPostgres: a throwaway PostgreSQL in the Vault namespace, so a dev stack can show dynamic
database credentials without any database of your own. Dev only (the config refuses it in prod).
The objects come from components.render.dev_postgres; this component only declares them.
"""

from __future__ import annotations

from dataclasses import dataclass

import pulumi
import pulumi_kubernetes as k8s

from components.providers.generated_password import GeneratedPassword
from components.render import vault_objects as vs
from components.render.dev_postgres import IMAGE, SECRET_NAME, deployment_spec, labels, service_spec
from components.resources.manifests import object_name


@dataclass(frozen=True)
class DevPostgresArgs:
    # The Vault namespace (the resource's name, so the objects wait for it).
    namespace: pulumi.Input[str]
    # The image as the pod pulls it (database.devPostgresImage under images.registry).
    image: str = IMAGE


class DevPostgres(pulumi.ComponentResource):
    """A throwaway PostgreSQL for a dev stack's database engine."""

    connection_name: str
    """The database engine connection that uses it."""
    connection_url: pulumi.Output[str]
    """The connection URL, a Vault template ({{username}}, {{password}})."""
    username: pulumi.Output[str]
    """The admin user."""
    password: pulumi.Output[str]
    """The admin user's password (secret)."""
    secret: k8s.core.v1.Secret
    """The admin user and password, which the pod reads at start."""
    deployment: k8s.apps.v1.Deployment
    """The database pod."""
    service: k8s.core.v1.Service
    """Where Vault reaches it."""

    def __init__(self, name: str, args: DevPostgresArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vault-platform:devpostgres:DevPostgres", name, None, opts)
        namespace = args.namespace
        child = pulumi.ResourceOptions(parent=self)
        # Letters and digits only: the password is substituted into a connection URL.
        generated = GeneratedPassword(f"{name}-password", length=32, opts=child)
        self.password = pulumi.Output.secret(generated.result)
        metadata = {"namespace": namespace, "labels": labels()}
        self.secret = k8s.core.v1.Secret(
            f"{name}-secret",
            metadata={**metadata, "name": SECRET_NAME},
            type="Opaque",
            string_data={"username": vs.DEV_POSTGRES_USER, "password": self.password},
            opts=child,
        )
        self.deployment = k8s.apps.v1.Deployment(
            f"{name}-deployment",
            metadata={**metadata, "name": vs.DEV_POSTGRES_NAME},
            spec=deployment_spec(args.image),
            # The pod reads the password from the Secret at start: create it first.
            opts=pulumi.ResourceOptions(parent=self, depends_on=[self.secret]),
        )
        self.service = k8s.core.v1.Service(
            f"{name}-service",
            metadata={**metadata, "name": vs.DEV_POSTGRES_NAME},
            spec=service_spec(),
            opts=child,
        )
        self.connection_name = vs.DEV_POSTGRES_NAME
        self.username = pulumi.Output.from_input(vs.DEV_POSTGRES_USER)
        # Known once the Service exists, so Vault's connection waits for it.
        self.connection_url = pulumi.Output.all(namespace=namespace, service=object_name(self.service)).apply(
            lambda known: vs.dev_postgres_connection_url(known["namespace"]))
        self.register_outputs({"connection_name": self.connection_name, "connection_url": self.connection_url,
                               "username": self.username, "password": self.password})
