"""Prometheus' promtool for the alert rule tests, built from Go modules by tools/promtool/build.sh
(a no-op when the cached binary is current; it waits, through the script's lock, for the build
`make test` starts in the background)."""

from __future__ import annotations

import os
import pathlib

from tests.build_tools import ROOT, built_tool

BUILD_SCRIPT = ROOT / "tools" / "promtool" / "build.sh"


def promtool_binary(timeout: float = 3600.0) -> pathlib.Path:
    """The promtool binary; RuntimeError (with the build's last lines) when it cannot be built."""
    explicit = os.environ.get("VAULT_PLATFORM_PROMTOOL_BIN")
    if explicit:
        path = pathlib.Path(explicit)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise RuntimeError(f"VAULT_PLATFORM_PROMTOOL_BIN={explicit!r} is not an executable file")
        return path
    return built_tool(BUILD_SCRIPT, timeout)
