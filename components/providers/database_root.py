"""DatabaseRootRotation: have Vault rotate a database connection's admin password right after the
connection is written (``<mount>/rotate-root/<name>``).

From then on only Vault knows the admin password: the one in ``secrets.databasePasswords`` stops
working in the database. The connection resource never sends it again (it sends a password only
when it is created or the password changes, and the program ignores changes to it), so the next
`pulumi up` leaves Vault's password alone. A connection that is recreated for a new database or
admin user is rotated again; see docs/day-2.md for giving Vault a new admin password.

Delete does nothing: nothing can rotate the old password back, and Vault's connection keeps working.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, Resource, UpdateResult

from components.providers.stored import by_value
from components.providers.vault_http import VaultHttp

# A different database or admin user is a new credential to rotate.
_REPLACE_ON = ("mount", "connection", "connection_url", "username")


class DatabaseRootRotationProvider(VaultHttp):
    def create(self, props: dict[str, Any]) -> CreateResult:
        path = f"{props['mount']}/rotate-root/{props['connection']}"
        # Whoever deploys now (VaultHttp's login order): the state holds no token.
        status, payload = self._call(props, "POST", path, {}, token=self._credentials(props), timeout=120)
        if status not in (200, 204):
            raise RuntimeError(
                f"Vault could not rotate the admin password of database connection {props['connection']!r} "
                f"(POST {path}): HTTP {status}: {self._errors(payload)}. The connection works with the password "
                "from secrets.databasePasswords until this succeeds; the next `pulumi up` tries again.")
        return CreateResult(id_=f"{props['mount']}/config/{props['connection']}", outs=props)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        replaces = [k for k in _REPLACE_ON if olds.get(k) != news.get(k)]
        changed = replaces + [k for k in ("address", "ca_cert_pem") if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed), replaces=replaces, stables=[], delete_before_replace=True)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        # Only how Vault is reached changed: nothing to rotate again.
        return UpdateResult(outs=news)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None


_STORED_PROVIDER = by_value(DatabaseRootRotationProvider)


class DatabaseRootRotation(Resource):
    """Rotates ``<mount>/config/<connection>``'s admin password once, when created. Give it
    ``depends_on`` the connection."""

    def __init__(self, name: str, *, access: dict[str, pulumi.Input[Any]], mount: pulumi.Input[str],
                 connection: str, connection_url: pulumi.Input[str], username: str,
                 opts: pulumi.ResourceOptions | None = None):
        props = {**access, "mount": mount, "connection": connection, "connection_url": connection_url,
                 "username": username}
        super().__init__(_STORED_PROVIDER(), name, props, opts)
