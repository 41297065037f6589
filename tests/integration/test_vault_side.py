"""The whole Vault side of both stacks through the real engine and the real pulumi-vault provider, on
both servers (tests/integration/vault_side.py says what is moved to loopback and why).

Each stack goes through what its users do: the first `pulumi up`, then `preview`, `refresh` and a
second `up` that find nothing to change; later runs from fresh CI runners that log in with GitHub
OIDC tokens minted for the job; previews as `previewer`; logins from other repositories, refs and
environments refused; database credentials issued; and the tear-down the docs give.
"""

from __future__ import annotations

import pathlib
from collections.abc import Iterator

import pytest

from tests.integration import servers
from tests.integration.conftest import _postgres
from tests.integration.engine import vault_plugin_binary
from tests.integration.vault_side import Database, VaultSide, start_vault_side, stop_vault_side

pytestmark = pytest.mark.engine


@pytest.fixture(scope="session")
def vault_plugin() -> pathlib.Path:
    try:
        return vault_plugin_binary(servers.cache_dir())
    except RuntimeError as exc:
        pytest.fail(str(exc))


def _database(with_tls: bool) -> Iterator[Database]:
    with _postgres(with_tls=with_tls) as (pg, tls):
        yield Database(pg.host, pg.port, pg.dbname, pg.user, pg.password,
                       pathlib.Path(tls.ca_cert).read_text() if tls else "")


@pytest.fixture
def dev(engine, vault_plugin, vault_bin, workdir) -> Iterator[VaultSide]:
    for database in _database(with_tls=False):
        side = start_vault_side("dev", engine, vault_plugin, vault_bin, workdir, database)
        try:
            yield side
        finally:
            stop_vault_side(side)


def test_dev_first_up_then_nothing_to_change(dev):
    up = dev.stack.up(on_output=print)
    assert up.summary.result == "succeeded"
    assert up.outputs["status"].value == "ready"
    preview = dev.stack.preview(expect_no_changes=True, on_output=print)
    assert preview.change_summary.get("same")
    dev.stack.refresh(expect_no_changes=True, on_output=print)
    again = dev.stack.up(expect_no_changes=True, on_output=print)
    assert again.summary.result == "succeeded"
