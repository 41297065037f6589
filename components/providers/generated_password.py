"""GeneratedPassword: a random password made once by `pulumi up` and kept as a secret in the state.

For what a dev stack makes for itself (the dev PostgreSQL's admin password): the standard library's
`secrets`, letters and digits only, so it can stand in a connection URL unquoted.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider

from components.providers.stored import by_value


class GeneratedPasswordProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        import secrets
        import string

        alphabet = string.ascii_letters + string.digits
        length = int(props.get("length") or 32)
        # Each class at least once: some databases insist on mixed characters.
        for _ in range(1000):
            value = "".join(secrets.choice(alphabet) for _ in range(length))
            if any(c.islower() for c in value) and any(c.isupper() for c in value) and any(
                    c.isdigit() for c in value):
                break
        return CreateResult(id_="generated-password", outs={**props, "result": value})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        # A new length is a new password; nothing else changes it.
        replaces = ["length"] if olds.get("length") != news.get("length") else []
        return DiffResult(changes=bool(replaces), replaces=replaces, stables=[], delete_before_replace=False)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_=id_, outs=props)


_STORED_PROVIDER = by_value(GeneratedPasswordProvider)


class GeneratedPassword(Resource, module="random", name="GeneratedPassword"):
    """Output: ``result`` (secret)."""

    result: pulumi.Output[str]

    def __init__(self, name: str, *, length: int = 32, opts: pulumi.ResourceOptions | None = None):
        secret = pulumi.ResourceOptions(additional_secret_outputs=["result"])
        super().__init__(_STORED_PROVIDER(), name, {"length": length, "result": None},
                         pulumi.ResourceOptions.merge(opts, secret))
