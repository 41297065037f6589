"""Kubernetes objects from the plain manifests the render layer builds."""

from __future__ import annotations

from typing import Any

import pulumi
import pulumi_kubernetes as k8s


def _typed(kind: str, manifest: dict[str, Any], name: str, opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
    if kind == "ServiceAccount":
        return k8s.core.v1.ServiceAccount(name, metadata=manifest["metadata"], opts=opts)
    if kind == "Role":
        return k8s.rbac.v1.Role(name, metadata=manifest["metadata"], rules=manifest["rules"], opts=opts)
    if kind == "RoleBinding":
        return k8s.rbac.v1.RoleBinding(name, metadata=manifest["metadata"], role_ref=manifest["roleRef"],
                                       subjects=manifest["subjects"], opts=opts)
    raise ValueError(f"no typed resource for {kind}")


def object_name(obj: pulumi.CustomResource) -> pulumi.Output[str]:
    """The object's metadata.name as the cluster has it. A destroy that runs the program registers an
    object missing from the state (a stack already torn down, a destroy that stopped half-way) with
    no outputs at all: lifting ``.metadata.name`` raises on that None and stops the tear-down."""
    return obj.metadata.apply(lambda meta: meta.name if meta is not None else None)


def declare(manifests: list[dict[str, Any]], prefix: str, opts: pulumi.ResourceOptions) -> list[pulumi.Resource]:
    """Service accounts, Roles and RoleBindings from plain manifests, named ``<prefix>-<kind>``."""
    return [_typed(m["kind"], m, f"{prefix}-{m['kind'].lower()}", opts) for m in manifests]


def custom_resource(name: str, manifest: dict[str, Any], opts: pulumi.ResourceOptions) -> pulumi.CustomResource:
    return k8s.apiextensions.CustomResource(name, api_version=manifest["apiVersion"], kind=manifest["kind"],
                                            metadata=manifest["metadata"], spec=manifest["spec"], opts=opts)


def job_identity(name: str, namespace: pulumi.Input[str], service_account: pulumi.Input[dict[str, Any]],
                 config_map: dict[str, Any], opts: pulumi.ResourceOptions,
                 ) -> tuple[k8s.core.v1.ServiceAccount, k8s.core.v1.ConfigMap]:
    """What every Job of the platform runs as and runs: its ServiceAccount (``<name>-sa``; Vault's
    Kubernetes auth role binds exactly it) and the ConfigMap carrying its script (``<name>-script``),
    both in the Vault namespace (the namespace resource's name, so they wait for it)."""
    account = pulumi.Output.from_input(service_account)
    sa = k8s.core.v1.ServiceAccount(
        f"{name}-sa",
        metadata=pulumi.Output.all(account=account, namespace=namespace).apply(
            lambda a: {**a["account"]["metadata"], "namespace": a["namespace"]}),
        automount_service_account_token=account.apply(lambda m: m["automountServiceAccountToken"]),
        opts=opts)
    script = k8s.core.v1.ConfigMap(f"{name}-script", metadata={**config_map["metadata"], "namespace": namespace},
                                   data=config_map["data"], opts=opts)
    return sa, script
