"""Prometheus' promtool for the alert rule tests, built from Go modules by tools/promtool/build.sh
(a no-op when the cached binary is current; it waits, through the script's lock, for the build
`make test` starts in the background)."""

from __future__ import annotations

import os
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[1]
BUILD_SCRIPT = ROOT / "tools" / "promtool" / "build.sh"


def promtool_binary(timeout: float = 3600.0) -> pathlib.Path:
    """The promtool binary; RuntimeError (with the build's last lines) when it cannot be built."""
    explicit = os.environ.get("VAULT_PLATFORM_PROMTOOL_BIN")
    if explicit:
        path = pathlib.Path(explicit)
        if not (path.is_file() and os.access(path, os.X_OK)):
            raise RuntimeError(f"VAULT_PLATFORM_PROMTOOL_BIN={explicit!r} is not an executable file")
        return path
    try:
        proc = subprocess.run(["bash", str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=timeout,
                              check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{BUILD_SCRIPT} did not finish within {timeout:.0f}s") from None
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.splitlines()[-30:])
        raise RuntimeError(f"{BUILD_SCRIPT} failed (exit {proc.returncode}):\n{tail}")
    path = pathlib.Path(lines[-1])
    if not os.access(path, os.X_OK):
        raise RuntimeError(f"{BUILD_SCRIPT} printed {path}, which is not executable")
    return path
