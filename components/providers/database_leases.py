"""DatabaseLeases: revoke a database connection's outstanding credentials before the connection goes.

Vault keeps a lease for every dynamic credential it issued. Once a role's connection is deleted,
those leases cannot be revoked ("failed to find entry for connection"), and unmounting the
database engine then fails with them still outstanding: a `pulumi destroy`, or the removal of a
connection from the config, stops half-way with the mount left behind. This resource depends on its
connection and the connection's roles, so Pulumi deletes it first: its delete revokes every lease
under ``<mount>/creds/<role>/`` while the connection can still drop the users. Removing a role from
the connection revokes that role's leases the same way.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, UpdateResult

from components.providers.stored import by_value
from components.providers.vault_http import VaultHttp


class DatabaseLeasesProvider(VaultHttp):
    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_=f"{props['mount']}/config/{props['connection']}", outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in ("address", "ca_cert_pem", "mount", "connection", "roles") if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed), replaces=[], stables=[], delete_before_replace=False)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        gone = [r for r in olds.get("roles") or [] if r not in (news.get("roles") or [])]
        # How Vault is reached now, not how it was at creation.
        self._revoke({**olds, **{k: news.get(k) for k in ("token_file", "login_path", "login_audience")}}, gone)
        return UpdateResult(outs=news)

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        self._revoke(props, list(props.get("roles") or []))

    def _revoke(self, props: dict[str, Any], roles: list[str]) -> None:
        if not roles:
            return
        # Whoever deploys now: the state holds no token of its own (VaultHttp's login order).
        token = self._credentials(props)
        for role in roles:
            prefix = f"{props['mount']}/creds/{role}"
            status, payload = self._call(props, "PUT", f"sys/leases/revoke-prefix/{prefix}", {},
                                         token=token, timeout=120)
            if status not in (200, 204):
                raise RuntimeError(
                    f"could not revoke the credentials of database role {role!r} ({prefix}/) before its connection "
                    f"{props['connection']!r} goes: HTTP {status}: {self._errors(payload)}. Revoke them with "
                    f"`vault lease revoke -prefix {prefix}` and run again.")


_STORED_PROVIDER = by_value(DatabaseLeasesProvider)


class DatabaseLeases(Resource):
    """Revokes ``<mount>/creds/<role>/`` leases for each of ``roles`` when deleted (or when a role
    leaves ``roles``). Give it ``depends_on`` the connection and its roles."""

    def __init__(self, name: str, *, access: dict[str, pulumi.Input[Any]], mount: pulumi.Input[str],
                 connection: str, roles: list[str], opts: pulumi.ResourceOptions | None = None):
        props = {**access, "mount": mount, "connection": connection, "roles": roles}
        super().__init__(_STORED_PROVIDER(), name, props, opts)
