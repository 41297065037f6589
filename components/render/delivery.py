"""How secrets reach an application's pods, as plain data: the Agent Injector's pod annotations and
templates, the projected token volume its agent logs in with, and what each application namespace
needs (created or labelled, our CA, service accounts). Pure: no Pulumi, no I/O.

The annotations are exported per application (the ``applications`` stack output), so an
application's own program puts exactly these on its pod template; the integration tests run a real
Vault Agent configured from them the way the injector configures one.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from components.model import Application, DeliveredSecret, PlatformConfig
from components.model.names import (
    AGENT_TLS_MOUNT,
    AGENT_TOKEN_PATH,
    AGENT_TOKEN_VOLUME,
    CA_KEY,
    DATABASE_SECRET_FILE,
    INJECTION_LABEL,
    INJECTION_LABEL_VALUE,
    SECRET_STORE,
    Names,
)
from components.render.labels import platform_labels

ANNOTATION = "vault.hashicorp.com"
SECRETS_MOUNT = "/vault/secrets"
# A projected token is refreshed by the kubelet at 80% of its life; the agent reads the file at each login.
TOKEN_EXPIRATION_SECONDS = 3600
LABELS = platform_labels()
# Inside '...' a shell takes everything literally except the quote itself, written '\'' (a Go raw
# string in the template, so no escaping there).
_SHELL_QUOTE = r""" | replaceAll "'" `'\''`"""


def role_audience(config: PlatformConfig, app: Application) -> str:
    return config.kubernetes_auth.audience if app.audience is None else app.audience


def _export(variable: str, value: str) -> str:
    return f"export {variable}='{{{{ {value}{_SHELL_QUOTE} }}}}'"


def kv_path(config: PlatformConfig, secret: DeliveredSecret) -> str:
    """The API path an agent reads a KV v2 secret from."""
    return f"{config.kv.path}/data/{secret.path}"


def kv_template(config: PlatformConfig, secret: DeliveredSecret) -> str:
    """``export NAME='value'`` per key, each value quoted for the shell: `. /vault/secrets/<name>` sets them."""
    lines = [f"{{{{ with secret {json.dumps(kv_path(config, secret))} -}}}}"]
    lines += [_export(variable, f".Data.data.{prop}") for variable, prop in secret.keys.items()]
    lines.append("{{ end -}}")
    return "\n".join(lines) + "\n"


def database_path(config: PlatformConfig, role: str) -> str:
    return f"{config.database.path}/creds/{role}"


def database_template(config: PlatformConfig, role: str) -> str:
    """PGUSER and PGPASSWORD, which libpq (psql, psycopg, most drivers) reads without further configuration."""
    return "\n".join([
        f"{{{{ with secret {json.dumps(database_path(config, role))} -}}}}",
        _export("PGUSER", ".Data.username"),
        _export("PGPASSWORD", ".Data.password"),
        "{{ end -}}",
    ]) + "\n"


def secret_files(config: PlatformConfig, app: Application) -> dict[str, tuple[str, str]]:
    """File name -> (Vault path, template) of everything the injector renders for the application."""
    files = {s.name: (kv_path(config, s), kv_template(config, s)) for s in app.secrets}
    if app.database_role:
        files[DATABASE_SECRET_FILE] = (database_path(config, app.database_role),
                                       database_template(config, app.database_role))
    return files


def agent_annotations(config: PlatformConfig, app: Application) -> dict[str, str]:
    """The pod annotations that make the injector give the application's pods their secrets over TLS."""
    names = Names.of(config)
    annotations = {
        f"{ANNOTATION}/agent-inject": "true",
        f"{ANNOTATION}/role": app.name,
        f"{ANNOTATION}/auth-path": f"auth/{config.kubernetes_auth.path}",
        # The active node: a sealed or standby pod never answers the agent.
        f"{ANNOTATION}/service": names.in_cluster_addr,
        # Our CA, from the Secret in the application's namespace the injector mounts at /vault/tls.
        f"{ANNOTATION}/tls-secret": names.ca_secret,
        f"{ANNOTATION}/ca-cert": f"{AGENT_TLS_MOUNT}/{CA_KEY}",
    }
    if role_audience(config, app):
        annotations[f"{ANNOTATION}/agent-service-account-token-volume-name"] = AGENT_TOKEN_VOLUME
    for name, (path, template) in secret_files(config, app).items():
        annotations[f"{ANNOTATION}/agent-inject-secret-{name}"] = path
        annotations[f"{ANNOTATION}/agent-inject-template-{name}"] = template
        # A property missing from the secret stops the agent instead of rendering an empty value.
        annotations[f"{ANNOTATION}/error-on-missing-key-{name}"] = "true"
    return annotations


def pod_volumes(config: PlatformConfig, app: Application) -> list[dict[str, Any]]:
    """The volumes the pod adds for its agent: a service account token minted for the role's audience."""
    audience = role_audience(config, app)
    if not audience:
        return []
    return [{"name": AGENT_TOKEN_VOLUME, "projected": {"sources": [{"serviceAccountToken": {
        "path": AGENT_TOKEN_PATH, "audience": audience, "expirationSeconds": TOKEN_EXPIRATION_SECONDS}}]}}]


def target_secret(app: Application) -> str:
    """The Kubernetes Secret the External Secrets Operator writes for the application."""
    return f"{app.name}-secrets"


def application_export(config: PlatformConfig, app: Application) -> dict[str, Any]:
    """What the application's own program needs, as the ``applications.<name>`` stack output."""
    out: dict[str, Any] = {"namespace": app.namespace, "serviceAccount": app.service_account, "role": app.name,
                           "delivery": app.delivery}
    if app.uses_injector:
        out["podAnnotations"] = agent_annotations(config, app)
        out["podVolumes"] = pod_volumes(config, app)
        out["secretFiles"] = {name: f"{SECRETS_MOUNT}/{name}" for name in secret_files(config, app)}
    if app.uses_external_secrets:
        out["externalSecret"] = {"name": app.name, "secretName": target_secret(app), "store": SECRET_STORE,
                                 "keys": sorted(k for s in app.secrets for k in s.keys)}
    return out


# --- namespaces ----------------------------------------------------------------------------------

@dataclass(frozen=True)
class NamespacePlan:
    """What one application namespace gets."""

    name: str
    # The stack creates it (an application asked to); otherwise it only labels an existing one.
    create: bool
    # Opted in to the injector's webhook, with our CA in it for the agents.
    injector: bool
    # Service accounts the stack creates there.
    service_accounts: tuple[str, ...]

    @property
    def labels(self) -> dict[str, str]:
        return {INJECTION_LABEL: INJECTION_LABEL_VALUE} if self.injector else {}


def namespace_plans(config: PlatformConfig) -> tuple[NamespacePlan, ...]:
    plans = []
    for namespace in sorted({a.namespace for a in config.applications}):
        apps = [a for a in config.applications if a.namespace == namespace]
        plans.append(NamespacePlan(
            name=namespace,
            create=any(a.create_namespace for a in apps),
            injector=any(a.uses_injector for a in apps),
            service_accounts=tuple(sorted(a.service_account for a in apps if a.create_service_account)),
        ))
    return tuple(plans)


def namespace_manifest(plan: NamespacePlan) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace",
            "metadata": {"name": plan.name, "labels": {**LABELS, **plan.labels}}}


def ca_secret_manifest(names: Names, namespace: str, ca_cert_pem: Any) -> dict[str, Any]:
    """Our CA certificate (public) as a Secret, because the injector mounts only Secrets into agents."""
    return {"apiVersion": "v1", "kind": "Secret", "type": "Opaque",
            "metadata": {"name": names.ca_secret, "namespace": namespace, "labels": dict(LABELS)},
            "stringData": {CA_KEY: ca_cert_pem}}


def service_account_manifest(namespace: str, name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ServiceAccount",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(LABELS)}}


def token_request_rbac(namespace: str, service_account: str, requester: tuple[str, str]) -> list[dict[str, Any]]:
    """A Role and RoleBinding that let ``requester`` (namespace, service account) request tokens for one
    service account, and nothing else: what an operator needs to log in to Vault as it."""
    name = f"{service_account}-token-request"
    return [
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
         "metadata": {"name": name, "namespace": namespace, "labels": dict(LABELS)},
         "rules": [{"apiGroups": [""], "resources": ["serviceaccounts/token"], "resourceNames": [service_account],
                    "verbs": ["create"]}]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
         "metadata": {"name": name, "namespace": namespace, "labels": dict(LABELS)},
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
         "subjects": [{"kind": "ServiceAccount", "name": requester[1], "namespace": requester[0]}]},
    ]


def api_client_namespaces(config: PlatformConfig) -> tuple[str, ...]:
    """Namespaces whose pods call the Vault API because of the applications: their own (agents, or the
    applications themselves), the External Secrets Operator's and cert-manager's."""
    found = {a.namespace for a in config.applications}
    if any(a.uses_external_secrets for a in config.applications):
        found.add(config.external_secrets.namespace)
    if config.cert_manager.enabled:
        found.add(config.cert_manager.namespace)
    return tuple(sorted(found))
