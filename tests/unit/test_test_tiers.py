"""The unit tier builds nothing: it runs first, while `make test` builds the tools in the background,
and a unit test waiting for a Go build would stall the whole tier for minutes."""

from __future__ import annotations

import pytest

from tests.build_tools import ROOT, built_tool


@pytest.mark.parametrize("tool", ["promtool", "helm", "vault-server", "pulumi-engine"])
def test_a_unit_test_asking_for_a_tool_fails_at_once(tool):
    with pytest.raises(RuntimeError, match="mark it with the tier that builds it"):
        built_tool(ROOT / "tools" / tool / "build.sh", timeout=5)
