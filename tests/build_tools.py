"""Running a tool's build script (tools/*/build.sh) from the tests: a no-op when the cached build is
current; it waits, through the script's lock, for the build `make test` starts in the background."""

from __future__ import annotations

import os
import pathlib
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[1]
LOG_TAIL_LINES = 30


def built_tool(script: pathlib.Path, timeout: float = 3600.0) -> pathlib.Path:
    """The executable the script prints last; RuntimeError (with the build's last lines) when the
    script fails or prints no executable."""
    if os.environ.get("VAULT_PLATFORM_TEST_TIER") == "unit":
        # The unit tier runs first, while the tools build: one unit test waiting for a build stalls it.
        raise RuntimeError(f"a unit test asked for {script.parent.name} ({script}): mark it with the tier "
                           "that builds it (promtool, chart, integration or engine)")
    try:
        proc = subprocess.run(["bash", str(script)], capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{script} did not finish within {timeout:.0f}s") from None
    lines = proc.stdout.strip().splitlines()
    if proc.returncode != 0 or not lines:
        tail = "\n".join(proc.stderr.splitlines()[-LOG_TAIL_LINES:])
        raise RuntimeError(f"{script} failed (exit {proc.returncode}):\n{tail}")
    path = pathlib.Path(lines[-1])
    if not (path.is_file() and os.access(path, os.X_OK)):
        raise RuntimeError(f"{script} printed {path}, which is not an executable file")
    return path
