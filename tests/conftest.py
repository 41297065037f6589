"""Suite-wide ordering and the server-flavour filter.

Unit tests run first, then the integration tests on OpenBao (installed with the venv), then on
HashiCorp Vault, whose first build from Go modules `make test` runs in the background meanwhile,
and last the engine tests (``engine`` marker), on both, which need the Pulumi CLI `make test`
builds after the Vault server. ``FLAVOR=openbao`` (or ``vault``) runs the integration tests on one
server only.
"""

from __future__ import annotations

import os

import pytest

from tests.integration.servers import FLAVORS


def selected_flavors() -> tuple[str, ...]:
    wanted = os.environ.get("FLAVOR", "").strip()
    if not wanted or wanted == "all":
        return FLAVORS
    chosen = tuple(f.strip() for f in wanted.split(",") if f.strip())
    unknown = [f for f in chosen if f not in FLAVORS]
    if unknown:
        raise pytest.UsageError(f"FLAVOR={wanted!r}: unknown flavour(s) {unknown}; use one of {', '.join(FLAVORS)} "
                                "or all")
    return chosen


def _flavor(item: pytest.Item) -> str | None:
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("flavor") if callspec else None


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(config, items):
    wanted = selected_flavors()
    dropped = [item for item in items if _flavor(item) not in (None, *wanted)]
    if dropped:
        config.hook.pytest_deselected(items=dropped)
        gone = {id(item) for item in dropped}
        items[:] = [item for item in items if id(item) not in gone]

    def order(item: pytest.Item) -> tuple[int, int, int]:
        flavor = _flavor(item)
        integration = item.get_closest_marker("integration") is not None
        engine = item.get_closest_marker("engine") is not None
        return (int(integration), int(engine), FLAVORS.index(flavor) + 1 if flavor else 0)

    # Stable: within each group pytest's own order (fixture scopes) stays as it was.
    items.sort(key=order)
