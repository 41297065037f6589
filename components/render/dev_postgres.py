"""The dev stack's throwaway PostgreSQL as Kubernetes objects. Pure: plain dicts.

Data lives in an emptyDir: a restarted pod starts empty, and Vault's connection (which verifies on
write) keeps working because the admin password comes from the same Secret.
"""

from __future__ import annotations

from typing import Any

from components.render import vault_objects as vs

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


def deployment_spec(image: str = IMAGE) -> dict[str, Any]:
    """One non-root PostgreSQL pod with a read-only root filesystem, limits and probes, running ``image``
    (database.devPostgresImage, from images.registry when the stack names one)."""
    container = {
        "name": "postgres",
        "image": image,
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


