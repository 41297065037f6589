"""DestroyGuard: a protected resource that every other resource of the stack comes before.

`pulumi destroy` deletes a stack from its leaves up and stops at the first protected resource it
reaches, after it has deleted everything unprotected on the way: policies, auth methods, roles, the
database connection. On prod that is an outage. This resource depends on every component of the
stack, so its delete is the first step of any destroy, and it is protected: a destroy stops there,
before it has deleted anything. `make teardown` (dev only) runs the program without protection.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, ReadResult, Resource, ResourceProvider

from components.providers.stored import by_value


class DestroyGuardProvider(ResourceProvider):
    def create(self, props: dict[str, Any]) -> CreateResult:
        return CreateResult(id_="destroy-guard", outs=props)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return ReadResult(id_=id_, outs=props)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None


_STORED_PROVIDER = by_value(DestroyGuardProvider)


class DestroyGuard(Resource, module="platform", name="DestroyGuard"):
    """Give it ``depends_on`` every component of the stack and ``protect``."""

    def __init__(self, name: str, *, stack_description: str, opts: pulumi.ResourceOptions | None = None):
        super().__init__(_STORED_PROVIDER(), name, {"guards": stack_description}, opts)
