"""Write requirements.lock.txt and policy/requirements.lock.txt: the exact pins of requirements.txt and
policy/requirements.txt with the sha256 of every wheel pip may pick for them on a CI runner (Linux
x86_64, CPython 3.11, glibc from 2.17 to 2.39), so that the prod jobs install with --require-hashes
and a package replaced on the index is refused instead of run with the job's credentials.

    venv/bin/python scripts/lock_requirements.py          # asks PyPI through pip; rewrites both files
    venv/bin/python scripts/lock_requirements.py --check  # offline: the locks pin what the sources pin

The hashes come from pip itself (`pip install --dry-run --report`), which reads them from the index.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {ROOT / "requirements.txt": ROOT / "requirements.lock.txt",
           ROOT / "policy" / "requirements.txt": ROOT / "policy" / "requirements.lock.txt"}
PYTHON = "3.11"
# The newest glibc a runner may have (ubuntu-24.04: 2.39) down to the oldest a wheel may ask for:
# pip on a runner takes the most specific wheel its glibc allows, so every ceiling gets its hashes.
GLIBC_CEILINGS = (39, 35, 31, 28, 17)
PIN = re.compile(r"^([A-Za-z0-9._-]+)==([^\s;#]+)\s*$")


def normal(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def pins(path: Path) -> dict[str, str]:
    """name (normalized) -> version of every `name==version` line; anything else is refused."""
    found: dict[str, str] = {}
    for line in path.read_text().splitlines():
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        match = PIN.match(text)
        if not match:
            raise SystemExit(f"{path.name}: {line!r} is not an exact pin (name==version)")
        found[normal(match.group(1))] = match.group(2)
    return found


def hashes_for(source: Path, ceiling: int) -> dict[tuple[str, str], set[str]]:
    platforms = [f"manylinux_2_{v}_x86_64" for v in range(ceiling, 16, -1)]
    platforms += ["manylinux2014_x86_64", "manylinux2010_x86_64", "manylinux1_x86_64", "linux_x86_64", "any"]
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        args = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--no-deps", "--quiet",
                "--only-binary=:all:", "--python-version", PYTHON, "--implementation", "cp",
                "--abi", f"cp{PYTHON.replace('.', '')}", "--abi", "abi3", "--abi", "none",
                *[a for p in platforms for a in ("--platform", p)],
                "--target", str(Path(tmp) / "target"), "--report", str(report), "-r", str(source)]
        subprocess.run(args, check=True, timeout=600)
        found: dict[tuple[str, str], set[str]] = {}
        for item in json.loads(report.read_text())["install"]:
            key = (normal(item["metadata"]["name"]), item["metadata"]["version"])
            digest = item["download_info"]["archive_info"]["hashes"]["sha256"]
            found.setdefault(key, set()).add(digest)
        return found


def lock(source: Path, target: Path) -> None:
    wanted = pins(source)
    digests: dict[tuple[str, str], set[str]] = {}
    for ceiling in GLIBC_CEILINGS:
        for key, values in hashes_for(source, ceiling).items():
            digests.setdefault(key, set()).update(values)
    lines = [f"# {source.relative_to(ROOT)} with the sha256 of every wheel a CI runner may install "
             "(scripts/lock_requirements.py writes it; do not edit).",
             "# Install with: pip install --require-hashes --no-deps -r " + str(target.relative_to(ROOT))]
    source_names = {normal(PIN.match(line.strip()).group(1)): PIN.match(line.strip()).group(1)
                    for line in source.read_text().splitlines() if PIN.match(line.strip())}
    for name, version in sorted(wanted.items()):
        values = sorted(digests.get((name, version), ()))
        if not values:
            raise SystemExit(f"pip found no wheel for {name}=={version}")
        lines.append(f"{source_names[name]}=={version} \\")
        lines += [f"    --hash=sha256:{v}" + (" \\" if i < len(values) - 1 else "") for i, v in enumerate(values)]
    target.write_text("\n".join(lines) + "\n")


def locked(path: Path) -> dict[str, tuple[str, list[str]]]:
    """name (normalized) -> (version, sha256 digests) of a lock file."""
    found: dict[str, tuple[str, list[str]]] = {}
    current = ""
    for line in path.read_text().splitlines():
        text = line.strip().rstrip("\\").strip()
        if not text or text.startswith("#"):
            continue
        if text.startswith("--hash=sha256:") and current:
            found[current][1].append(text.removeprefix("--hash=sha256:"))
            continue
        match = PIN.match(text)
        if not match:
            raise SystemExit(f"{path.name}: {line!r} is neither a pin nor a hash")
        current = normal(match.group(1))
        found[current] = (match.group(2), [])
    return found


def check() -> list[str]:
    problems = []
    for source, target in SOURCES.items():
        name = target.relative_to(ROOT)
        if not target.exists():
            problems.append(f"{name} is missing")
            continue
        entries = locked(target)
        if pins(source) != {k: v for k, (v, _) in entries.items()}:
            problems.append(f"{name} does not pin what {source.relative_to(ROOT)} pins: run this script")
        problems += [f"{name}: {k} has no sha256" for k, (_, digests) in entries.items()
                     if not digests or not all(re.fullmatch(r"[0-9a-f]{64}", d) for d in digests)]
    return problems


def main(argv: list[str]) -> int:
    if argv[1:] == ["--check"]:
        problems = check()
        print("\n".join(problems) or "locks match their sources")
        return 1 if problems else 0
    for source, target in SOURCES.items():
        lock(source, target)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
