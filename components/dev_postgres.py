"""DevPostgres: a throwaway PostgreSQL in the Vault namespace, so a dev stack can show dynamic
database credentials without any database of your own. Dev only (config refuses it in prod).

Data lives in an emptyDir: a restarted pod starts empty, and Vault's connection (which verifies on
write) keeps working because the admin password comes from the same Secret.

Pure builders (``labels``, ``deployment_spec``, ``service_spec``) compute the Kubernetes objects;
the component only declares them.
"""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s
import pulumi_random as random

from components import vault_settings as vs
from components.config import PlatformConfig

# Pinned: the official image, PostgreSQL 16.6 on Alpine. Its `postgres` user is uid/gid 70.
IMAGE = "postgres:16.6-alpine"
POSTGRES_UID = 70
PGDATA = "/var/lib/postgresql/data/pgdata"
SECRET_NAME = vs.DEV_POSTGRES_NAME


def labels() -> dict[str, str]:
    return {"app.kubernetes.io/name": vs.DEV_POSTGRES_NAME, "app.kubernetes.io/part-of": "vault-platform",
            "app.kubernetes.io/component": "dev-database"}


def _pg_isready() -> list[str]:
    return ["pg_isready", "-h", "127.0.0.1", "-p", str(vs.DEV_POSTGRES_PORT), "-U", vs.DEV_POSTGRES_USER,
            "-d", vs.DEV_POSTGRES_DB]


def deployment_spec() -> dict[str, Any]:
    """One non-root PostgreSQL pod with a read-only root filesystem, limits and probes."""
    container = {
        "name": "postgres",
        "image": IMAGE,
        "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "postgres", "containerPort": vs.DEV_POSTGRES_PORT, "protocol": "TCP"}],
        "env": [
            {"name": "POSTGRES_USER", "value": vs.DEV_POSTGRES_USER},
            {"name": "POSTGRES_DB", "value": vs.DEV_POSTGRES_DB},
            {"name": "POSTGRES_PASSWORD",
             "valueFrom": {"secretKeyRef": {"name": SECRET_NAME, "key": "password"}}},
            {"name": "PGDATA", "value": PGDATA},
        ],
        "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                      "limits": {"cpu": "250m", "memory": "256Mi"}},
        "readinessProbe": {"exec": {"command": _pg_isready()}, "initialDelaySeconds": 5, "periodSeconds": 5,
                           "timeoutSeconds": 3, "failureThreshold": 6},
        "livenessProbe": {"exec": {"command": _pg_isready()}, "initialDelaySeconds": 30, "periodSeconds": 10,
                          "timeoutSeconds": 5, "failureThreshold": 6},
        "securityContext": {"allowPrivilegeEscalation": False, "readOnlyRootFilesystem": True,
                            "capabilities": {"drop": ["ALL"]}},
        "volumeMounts": [
            {"name": "data", "mountPath": "/var/lib/postgresql/data"},
            {"name": "run", "mountPath": "/var/run/postgresql"},
            {"name": "tmp", "mountPath": "/tmp"},  # noqa: S108 - a private emptyDir
        ],
    }
    return {
        "replicas": 1,
        "strategy": {"type": "Recreate"},
        "selector": {"matchLabels": labels()},
        "template": {
            "metadata": {"labels": labels()},
            "spec": {
                "automountServiceAccountToken": False,
                "enableServiceLinks": False,
                "securityContext": {"runAsNonRoot": True, "runAsUser": POSTGRES_UID, "runAsGroup": POSTGRES_UID,
                                    "fsGroup": POSTGRES_UID, "seccompProfile": {"type": "RuntimeDefault"}},
                "containers": [container],
                "volumes": [
                    {"name": "data", "emptyDir": {"sizeLimit": "1Gi"}},
                    {"name": "run", "emptyDir": {"medium": "Memory", "sizeLimit": "16Mi"}},
                    {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
                ],
            },
        },
    }


def service_spec() -> dict[str, Any]:
    return {"type": "ClusterIP", "selector": labels(),
            "ports": [{"name": "postgres", "port": vs.DEV_POSTGRES_PORT, "targetPort": "postgres",
                       "protocol": "TCP"}]}


class DevPostgres(pulumi.ComponentResource):
    """Outputs: ``connection_name``, ``connection_url`` (a Vault template), ``username``, ``password`` (secret)."""

    connection_name: str
    connection_url: pulumi.Output[str]
    username: pulumi.Output[str]
    password: pulumi.Output[str]

    def __init__(self, name: str, config: PlatformConfig, namespace: pulumi.Input[str],
                 opts: pulumi.ResourceOptions | None = None):
        super().__init__("vault-platform:devpostgres:DevPostgres", name, None, opts)
        if not config.database.dev_postgres:
            raise ValueError("DevPostgres is only created when database.devPostgres is true")
        child = pulumi.ResourceOptions(parent=self)
        generated = random.RandomPassword(
            f"{name}-password", length=32,
            # Letters and digits only: the password is substituted into a connection URL.
            special=False, min_lower=4, min_upper=4, min_numeric=4,
            opts=child)
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
            spec=deployment_spec(),
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
        self.connection_url = pulumi.Output.all(namespace, self.service.metadata.name).apply(
            lambda args: vs.dev_postgres_connection_url(args[0]))
        self.register_outputs({"connection_name": self.connection_name, "connection_url": self.connection_url,
                               "username": self.username, "password": self.password})
