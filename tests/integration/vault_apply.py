"""Apply the ``components.vault_settings`` model to a real Vault through its HTTP API.

The Pulumi Vault provider cannot run in CI (no provider plugins), so the integration tests write the
very same model the ``VaultConfiguration`` component declares, one HTTP call per resource, with the
arguments the provider would send. A test that passes here proves the model's mounts, connection
settings, SQL statements, roles, PKI settings and policies are accepted by Vault and do what we
claim.

``plan(settings, ...)`` is a generator of ``Step(method, path, payload)``. Some payloads need an
earlier answer (the Kubernetes auth accessor for the templated policy, the intermediate CA's CSR):
the applier sends each response back into the generator, which is what ``apply`` does::

    responses = apply(settings, vault.api, only={"mounts", "policies"})
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Iterable
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from components.render import deploy_identity as ident
from components.render import policies as pol
from components.render import vault_objects as vs
from tests.integration.servers import wait_for_kv_v2

SECTIONS = ("audit", "deploy", "mounts", "kv", "database", "rotate_root", "pki", "transit", "auth", "policies",
            "roles", "kv_secrets", "autopilot")


@dataclass(frozen=True)
class Step:
    section: str
    method: str
    path: str
    payload: dict[str, Any] | None = None

    def __repr__(self) -> str:
        # Payloads may hold secrets (database passwords, KV values): never print them.
        return f"Step({self.section}: {self.method} {self.path})"


Plan = Generator[Step, dict[str, Any], None]


def mount_payload(mount: vs.Mount) -> dict[str, Any]:
    config: dict[str, Any] = {}
    if mount.default_lease_ttl_seconds is not None:
        config["default_lease_ttl"] = f"{mount.default_lease_ttl_seconds}s"
    if mount.max_lease_ttl_seconds is not None:
        config["max_lease_ttl"] = f"{mount.max_lease_ttl_seconds}s"
    payload: dict[str, Any] = {"type": mount.type, "description": mount.description, "config": config}
    if mount.options:
        payload["options"] = dict(mount.options)
    return payload


def connection_payload(conn: vs.DatabaseConnection, password: str) -> dict[str, Any]:
    return {
        "plugin_name": conn.plugin_name,
        "connection_url": conn.connection_url,
        "username": conn.username,
        "password": password,
        "allowed_roles": list(conn.allowed_roles),
        "verify_connection": conn.verify_connection,
        "max_open_connections": conn.max_open_connections,
        "password_authentication": conn.password_authentication,
        **({"tls_ca": conn.tls_ca} if conn.tls_ca else {}),
    }


def role_payload(role: vs.DatabaseRole) -> dict[str, Any]:
    return {
        "db_name": role.db_name,
        "creation_statements": list(role.creation_statements),
        "revocation_statements": list(role.revocation_statements),
        "default_ttl": role.default_ttl_seconds,
        "max_ttl": role.max_ttl_seconds,
    }


def pki_role_payload(role: vs.PkiRole) -> dict[str, Any]:
    return {
        "allowed_domains": list(role.allowed_domains),
        "allow_subdomains": role.allow_subdomains,
        "allow_bare_domains": role.allow_bare_domains,
        "allow_glob_domains": role.allow_glob_domains,
        "allow_ip_sans": role.allow_ip_sans,
        "allow_localhost": role.allow_localhost,
        "ttl": str(role.ttl_seconds),
        "max_ttl": str(role.max_ttl_seconds),
        "key_type": role.key_type,
        "key_bits": role.key_bits,
    }


def kubernetes_role_payload(role: vs.KubernetesRole) -> dict[str, Any]:
    return {
        "bound_service_account_names": list(role.bound_service_account_names),
        "bound_service_account_namespaces": list(role.bound_service_account_namespaces),
        "token_policies": list(role.token_policies),
        "token_ttl": role.token_ttl_seconds,
        "token_max_ttl": role.token_max_ttl_seconds,
        "audience": role.audience,
    }


def jwt_config_payload(auth: ident.JwtAuth, override: dict[str, Any] | None) -> dict[str, Any]:
    payload = ident.config_payload(auth)
    if override is not None:
        # Tests cannot reach the issuer's discovery URL: they give the signing keys instead.
        payload.pop("oidc_discovery_url")
        payload.update(override)
    elif auth.client_secret is not None:
        payload["oidc_client_secret"] = auth.client_secret.reveal()
    return payload


def tidy_payload(tidy: vs.PkiTidy) -> dict[str, Any]:
    return {"enabled": tidy.enabled, "interval_duration": f"{tidy.interval_seconds}s",
            "safety_buffer": f"{tidy.safety_buffer_seconds}s", "tidy_cert_store": tidy.tidy_cert_store,
            "tidy_revoked_certs": tidy.tidy_revoked_certs,
            "tidy_revoked_cert_issuer_associations": tidy.tidy_revoked_cert_issuer_associations,
            "tidy_expired_issuers": tidy.tidy_expired_issuers}


def autopilot_payload(a: vs.RaftAutopilot) -> dict[str, Any]:
    return {"cleanup_dead_servers": a.cleanup_dead_servers,
            "dead_server_last_contact_threshold": a.dead_server_last_contact_threshold,
            "last_contact_threshold": a.last_contact_threshold,
            "server_stabilization_time": a.server_stabilization_time, "max_trailing_logs": a.max_trailing_logs,
            "min_quorum": a.min_quorum}


def _urls(ca: vs.CertificateAuthority) -> Step:
    return Step("pki", "POST", f"{ca.mount.path}/config/urls",
                {"issuing_certificates": list(ca.issuing_certificates),
                 "crl_distribution_points": list(ca.crl_distribution_points)})


def plan(settings: vs.VaultObjects, *, sections: Iterable[str] = SECTIONS, passwords: dict[str, str] | None = None,
         kubernetes_config: dict[str, Any] | None = None, jwt_config: dict[str, Any] | None = None) -> Plan:
    """Every call that configures Vault as ``settings`` says, in dependency order.

    ``sections``: which parts to write (see SECTIONS); writing policies or roles implies the auth
    mount, since the templated policy needs its accessor. ``passwords``: database connection name ->
    admin password (the model holds Secrets, and None for the dev PostgreSQL). ``kubernetes_config``:
    extra fields for ``auth/<path>/config`` (outside a pod, tests point Vault at a fake API server
    instead of its own service account files). ``jwt_config``: replaces the issuer discovery of the
    deploy identity's auth methods (e.g. ``jwt_validation_pubkeys``), which tests cannot reach.
    """
    wanted = set(sections)
    unknown = wanted - set(SECTIONS)
    if unknown:
        raise ValueError(f"unknown sections {sorted(unknown)}; known: {SECTIONS}")
    if wanted & {"policies", "roles"}:
        wanted.add("auth")
    passwords = passwords or {}
    if "audit" in wanted:
        for device in settings.audit_devices:
            yield Step("audit", "PUT", f"sys/audit/{device.path}",
                       {"type": device.type, "description": device.description, "options": dict(device.options)})
    if "deploy" in wanted:
        for policy in settings.policies:
            if policy.name in settings.identity_policy_names:
                yield Step("deploy", "PUT", f"sys/policies/acl/{policy.name}", {"policy": pol.render(policy)})
        for auth in settings.deploy_auths:
            yield Step("deploy", "POST", f"sys/auth/{auth.path}", {"type": auth.type, "description": auth.description})
            yield Step("deploy", "POST", f"auth/{auth.path}/config", jwt_config_payload(auth, jwt_config))
            for role in auth.roles:
                yield Step("deploy", "POST", f"auth/{auth.path}/role/{role.name}", ident.role_payload(role))
    if "mounts" in wanted:
        for mount in settings.mounts:
            yield Step("mounts", "POST", f"sys/mounts/{mount.path}", mount_payload(mount))
    kv = settings.kv
    if "kv" in wanted:
        yield Step("kv", "POST", f"{kv.mount.path}/config",
                   {"max_versions": kv.max_versions, "cas_required": kv.cas_required})
    if settings.database and "database" in wanted:
        db = settings.database
        for conn in db.connections:
            password = passwords.get(conn.name) or (conn.password.reveal() if conn.password else None)
            if password is None:
                raise ValueError(f"no password for database connection {conn.name!r}")
            yield Step("database", "POST", f"{db.mount.path}/config/{conn.name}", connection_payload(conn, password))
        for role in db.roles:
            yield Step("database", "POST", f"{db.mount.path}/roles/{role.name}", role_payload(role))
    if settings.database and "rotate_root" in wanted:
        # What DatabaseRootRotation does once the connection exists.
        for conn in settings.database.connections:
            if conn.rotate_root:
                yield Step("rotate_root", "POST", f"{settings.database.mount.path}/rotate-root/{conn.name}", {})
    if settings.pki and "pki" in wanted:
        root = settings.pki.root
        yield Step("pki", "POST", f"{root.mount.path}/root/generate/internal",
                   {"common_name": root.common_name, "ttl": str(root.ttl_seconds), "key_type": root.key_type,
                    "key_bits": root.key_bits})
        yield _urls(root)
        if settings.pki.tidy is not None:
            yield Step("pki", "POST", f"{root.mount.path}/config/auto-tidy", tidy_payload(settings.pki.tidy))
        inter = settings.pki.intermediate
        if inter:
            csr = yield Step("pki", "POST", f"{inter.mount.path}/intermediate/generate/internal",
                             {"common_name": inter.common_name, "key_type": inter.key_type,
                              "key_bits": inter.key_bits})
            signed = yield Step("pki", "POST", f"{root.mount.path}/root/sign-intermediate",
                                {"csr": csr["data"]["csr"], "common_name": inter.common_name,
                                 "ttl": str(inter.ttl_seconds), "format": "pem_bundle"})
            yield Step("pki", "POST", f"{inter.mount.path}/intermediate/set-signed",
                       {"certificate": signed["data"]["certificate"]})
            yield _urls(inter)
            if settings.pki.tidy is not None:
                yield Step("pki", "POST", f"{inter.mount.path}/config/auto-tidy", tidy_payload(settings.pki.tidy))
        for role in settings.pki.roles:
            yield Step("pki", "POST", f"{role.backend}/roles/{role.name}", pki_role_payload(role))
    if settings.transit and "transit" in wanted:
        for key in settings.transit.keys:
            path = f"{settings.transit.mount.path}/keys/{key.name}"
            yield Step("transit", "POST", path, {"type": key.type})
            # The provider writes a key's settings to its config endpoint after creating it.
            yield Step("transit", "POST", f"{path}/config",
                       {"deletion_allowed": False, "auto_rotate_period": f"{key.auto_rotate_period_seconds}s"})
    auth = settings.kubernetes_auth
    if "auth" in wanted:
        yield Step("auth", "POST", f"sys/auth/{auth.path}",
                   {"type": "kubernetes", "description": auth.description,
                    "config": {"default_lease_ttl": f"{auth.default_lease_ttl_seconds}s"}})
        yield Step("auth", "POST", f"auth/{auth.path}/config",
                   {"kubernetes_host": auth.kubernetes_host, "disable_local_ca_jwt": auth.disable_local_ca_jwt,
                    **(kubernetes_config or {})})
    if "policies" in wanted:
        listing = yield Step("policies", "GET", "sys/auth")
        accessor = listing["data"][f"{auth.path}/"]["accessor"]
        for policy in settings.all_policies(accessor):
            yield Step("policies", "PUT", f"sys/policies/acl/{policy.name}", {"policy": pol.render(policy)})
    if "roles" in wanted:
        for role in settings.all_roles:
            yield Step("roles", "POST", f"auth/{auth.path}/role/{role.name}", kubernetes_role_payload(role))
    if settings.autopilot is not None and "autopilot" in wanted:
        yield Step("autopilot", "POST", "sys/storage/raft/autopilot/configuration",
                   autopilot_payload(settings.autopilot))
    if "kv_secrets" in wanted:
        for secret in settings.kv_secrets:
            payload: dict[str, Any] = {"data": {k: v.reveal() for k, v in secret.data.items()},
                                       "options": {"cas": secret.cas}}
            yield Step("kv_secrets", "POST", f"{secret.mount}/data/{secret.name}", payload)


Caller = Callable[..., dict[str, Any]]


def apply(settings: vs.VaultObjects, call: Caller, *, only: Iterable[str] | None = None,
          passwords: dict[str, str] | None = None, kubernetes_config: dict[str, Any] | None = None,
          jwt_config: dict[str, Any] | None = None) -> list[tuple[Step, dict[str, Any]]]:
    """Run ``plan`` through ``call(method, path, json=payload)`` (e.g. ``VaultProcess.api``), sending
    each answer back into the plan. ``only``: the sections to write (default: all). Returns every
    (step, response) made."""
    gen = plan(settings, sections=SECTIONS if only is None else only, passwords=passwords,
               kubernetes_config=kubernetes_config, jwt_config=jwt_config)
    made: list[tuple[Step, dict[str, Any]]] = []
    try:
        step = next(gen)
        for _ in range(100_000):  # bounded: a plan is finite; this only guards against a bug
            response = call(step.method, step.path, json=step.payload)
            made.append((step, response))
            if step.section == "mounts" and step.payload and step.payload.get("options", {}).get("version") == "2":
                # A new KV v2 mount upgrades its storage layout before it serves requests.
                wait_for_kv_v2(call, step.path.removeprefix("sys/mounts/"))
            step = gen.send(response)
    except StopIteration:
        return made
    raise RuntimeError("plan did not finish after 100000 steps")


def retarget_connection(conn: vs.DatabaseConnection, *, host: str, port: int, dbname: str, username: str,
                        sslmode: str = "disable") -> vs.DatabaseConnection:
    """The same connection (template, plugin, roles, options) pointed at another server.

    Only the network location, database name, sslmode and admin user change: the
    ``{{username}}:{{password}}`` template and everything else stay as the model says.
    """
    parts = urlsplit(conn.connection_url)
    userinfo = parts.netloc.rsplit("@", 1)[0]
    query = "&".join(p for p in parts.query.split("&") if p and not p.startswith("sslmode="))
    query = "&".join(filter(None, [query, f"sslmode={sslmode}"]))
    url = urlunsplit((parts.scheme, f"{userinfo}@{host}:{port}", f"/{dbname}", query, ""))
    # The model's CA belongs to the model's database; a test server without TLS needs none.
    return replace(conn, connection_url=url, username=username, tls_ca=conn.tls_ca if sslmode != "disable" else "")
