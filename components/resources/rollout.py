"""Leader-aware rolling restarts and safe scale-downs, run in the cluster (scripts/vault_rollout.py,
manifests from components.render.rollout_job).

Two components, because they sit on either side of the release in the order `pulumi up` works in:

- ``RolloutAccess`` (in VaultCluster, before the release): the Job's service account and its Role
  (read the StatefulSet, read and delete its pods by name, nothing else), the script, and the
  scale-down Job, which removes departing servers from Raft before the StatefulSet shrinks.
- ``VaultRollout`` (after Vault is configured, with the Job's ``raft-rollout`` role): the restart
  Job, named after the chart values so every change that may touch the pod template runs it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pulumi
import pulumi_kubernetes as k8s

from components.render import rollout_job
from components.render.rollout_job import RolloutJob
from components.resources.errors import InvalidInput
from components.resources.manifests import job_identity, object_name

# The script the Job runs, carried by a ConfigMap: read here, at the edge, so the builders stay pure.
SCRIPT_PATH = Path(__file__).resolve().parent / "jobs" / "vault_rollout.py"


def read_script() -> str:
    """scripts/vault_rollout.py, as the ConfigMap carries it."""
    return SCRIPT_PATH.read_text()


def _meta(manifest: dict, namespace: pulumi.Input[str]) -> dict:
    """The manifest's metadata, in the namespace resource's namespace (so it waits for it)."""
    return {**manifest["metadata"], "namespace": namespace}


def _job_timeouts(spec: RolloutJob) -> pulumi.CustomTimeouts:
    # `pulumi up` waits for the Job as long as the Job itself may run.
    minutes = spec.deadline_seconds // 60 + 5
    return pulumi.CustomTimeouts(create=f"{minutes}m", update=f"{minutes}m")


@dataclass(frozen=True)
class RolloutAccessArgs:
    # What the Jobs run with (components.render.rollout_job.RolloutJob).
    job: RolloutJob
    # The Vault namespace (the resource's name, so the objects wait for it).
    namespace: pulumi.Input[str]
    # What the scale-down Job needs to exist first (the CA Secret it mounts).
    wait_for: tuple[pulumi.Resource, ...] = ()


class RolloutAccess(pulumi.ComponentResource):
    """What the rolling restart runs as, and the scale-down Job the release waits for."""

    service_account: k8s.core.v1.ServiceAccount
    """The Jobs' service account (Vault's raft-rollout role binds exactly it)."""
    config_map: k8s.core.v1.ConfigMap
    """The script the Jobs run."""
    role: k8s.rbac.v1.Role
    """Read the StatefulSet, read and delete its pods by name, nothing else."""
    role_binding: k8s.rbac.v1.RoleBinding
    """The Role, bound to the service account."""
    scale_down: k8s.batch.v1.Job
    """Removes departing servers from Raft before the StatefulSet shrinks: the release waits for it."""

    def __init__(self, name: str, args: RolloutAccessArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vault-platform:rollout:RolloutAccess", name, None, opts)
        names = args.job.names
        ns = args.namespace
        child = pulumi.ResourceOptions(parent=self)
        script = read_script()
        self.service_account, self.config_map = job_identity(
            name, ns, rollout_job.service_account(names), rollout_job.config_map(names, script), child)
        role = rollout_job.role(names)
        self.role = k8s.rbac.v1.Role(f"{name}-role", metadata=_meta(role, ns), rules=role["rules"], opts=child)
        binding = rollout_job.role_binding(names)
        self.role_binding = k8s.rbac.v1.RoleBinding(
            f"{name}-binding", metadata=_meta(binding, ns), role_ref=binding["roleRef"], subjects=binding["subjects"],
            opts=child)
        job = rollout_job.scale_down_job(args.job, script)
        self.scale_down = k8s.batch.v1.Job(
            f"{name}-scale-down",
            metadata=_meta(job, ns),
            spec=job["spec"],
            opts=pulumi.ResourceOptions(
                parent=self, custom_timeouts=_job_timeouts(args.job),
                depends_on=[self.service_account, self.role, self.role_binding, self.config_map, *args.wait_for]),
        )
        self.register_outputs({"service_account": object_name(self.service_account)})


@dataclass(frozen=True)
class VaultRolloutArgs:
    # What the Job runs with (components.render.rollout_job.RolloutJob).
    job: RolloutJob
    # The Vault namespace (the resource's name, so the objects wait for it).
    namespace: pulumi.Input[str]
    # A hash of what the pod template is made from (VaultCluster.pod_template_trigger).
    trigger: pulumi.Input[str]
    # shamir (dev): the key shares the Job unseals restarted pods with (a secret Output).
    unseal_keys: pulumi.Input[list[str]] | None = None
    # What must be in place first: the release, Vault's configuration, the RolloutAccess objects.
    wait_for: tuple[pulumi.Resource, ...] = ()


class VaultRollout(pulumi.ComponentResource):
    """The restart Job, named after the chart values, and (shamir) the key shares it unseals with."""

    job: k8s.batch.v1.Job
    """The restart Job (registered output ``job``: its name)."""
    unseal_secret: k8s.core.v1.Secret | None
    """shamir: the Secret holding the key shares the Job unseals restarted pods with."""

    def __init__(self, name: str, args: VaultRolloutArgs, opts: pulumi.ResourceOptions | None = None):
        super().__init__("vault-platform:rollout:VaultRollout", name, None, opts)
        spec = args.job
        ns = args.namespace
        script = read_script()
        waits: list[pulumi.Resource] = list(args.wait_for)
        self.unseal_secret = None
        if spec.unseal_keys:
            if args.unseal_keys is None:
                raise InvalidInput("unseal_keys", "VaultRollout: a shamir rollout needs the unseal keys")
            secret = pulumi.Output.from_input(args.unseal_keys).apply(
                lambda keys: rollout_job.unseal_secret(spec.names, list(keys or [])))
            self.unseal_secret = k8s.core.v1.Secret(
                f"{name}-unseal-keys",
                metadata=pulumi.Output.all(manifest=secret, namespace=ns).apply(
                    lambda a: {**a["manifest"]["metadata"], "namespace": a["namespace"]}),
                type="Opaque",
                string_data=pulumi.Output.secret(secret.apply(lambda m: m["stringData"])),
                opts=pulumi.ResourceOptions(parent=self, additional_secret_outputs=["stringData", "data"]),
            )
            waits.append(self.unseal_secret)
        job = pulumi.Output.from_input(args.trigger).apply(lambda t: rollout_job.restart_job(spec, t, script))
        self.job = k8s.batch.v1.Job(
            f"{name}-restart",
            metadata=pulumi.Output.all(manifest=job, namespace=ns).apply(
                lambda a: {**a["manifest"]["metadata"], "namespace": a["namespace"]}),
            spec=job.apply(lambda m: m["spec"]),
            opts=pulumi.ResourceOptions(parent=self, custom_timeouts=_job_timeouts(spec), depends_on=waits),
        )
        self.register_outputs({"job": object_name(self.job)})


def values_trigger(values: dict, chart_version: str) -> str:
    return rollout_job.trigger(json.dumps(values, sort_keys=True, default=str), chart_version)
