"""Where the program meets its stack config: the Pulumi runtime, the stack file and charts on disk.

The model (components/model) validates plain data and reads nothing; this module reads what it
needs and turns a config error into the error Pulumi prints without a traceback.
"""

from __future__ import annotations

import tarfile
from pathlib import Path
from typing import Any

import pulumi
import yaml
from pulumi import runtime

from components.model import ConfigError, PlatformConfig, load_config
from components.model.load import project_keys
from components.model.types import PROJECT, Secret


class StackConfigError(ConfigError, pulumi.RunError):
    """Invalid stack config, as the program reports it: the message alone, no traceback."""


def load_from_pulumi() -> PlatformConfig:
    """Read this stack's config as the Pulumi runtime hands it to the program, and validate it.

    Every ``vault-platform:`` key the runtime holds is read, not only the ones the model declares: a
    misspelled key is refused wherever it came from (the stack file, ``--config-file``, a Pulumi ESC
    environment, the Automation API).
    """
    env_secret_keys = set(runtime.get_config_secret_keys_env())
    raw: dict[str, Any] = {}
    secret_keys: set[str] = set()
    names = set(PlatformConfig.model_fields) | {f.alias for f in PlatformConfig.model_fields.values() if f.alias}
    stack_file = read_stack_file(Path.cwd() / f"Pulumi.{pulumi.get_stack()}.yaml")
    names |= project_keys((stack_file or {}).get("config", {}))
    names |= project_keys(runtime_config())
    for name in names:
        full = f"{PROJECT}:{name}"
        value = runtime.get_config(full)
        if value is None:
            continue
        raw[full] = value
        if runtime.is_config_secret(full) or full in env_secret_keys:
            secret_keys.add(full)
    try:
        return load_config(raw, secret_keys, stack_file=stack_file, read_chart=chart_on_disk)
    except ConfigError as err:
        raise StackConfigError(err.problems) from None


def runtime_config() -> dict[str, Any]:
    """Every config value the runtime holds: what the language host passes the program in PULUMI_CONFIG
    (the CLI's merged config: stack file, --config-file, ESC environments), and what is set in-process
    (the Automation API's inline programs, Pulumi's test mocks)."""
    from pulumi.runtime import config

    found = dict(config.get_config_env())
    found.update(config.CONFIG.get())
    return found


def read_stack_file(path: Path) -> dict[str, Any] | None:
    """The stack file the CLI read the config from (it runs the program in the project folder):
    its keys show a misspelled top-level key, its `secure:` markers a secret left in plain text."""
    if not path.exists():
        return None
    return yaml.safe_load(path.read_text()) or {}


def chart_on_disk(path: str) -> tuple[str, str] | str:
    """(name, version) from the Chart.yaml of a chart folder or a `helm pull` .tgz, or why not.
    A relative path is taken from the current folder: the project folder, where Pulumi runs the program."""
    where = Path(path)
    try:
        if where.is_dir():
            text = (where / "Chart.yaml").read_text()
        elif where.is_file():
            with tarfile.open(where) as tgz:
                member = next((m for m in tgz.getmembers() if m.isfile() and m.name.count("/") == 1
                               and m.name.endswith("/Chart.yaml")), None)
                if member is None:
                    return "is an archive without <chart>/Chart.yaml (give a chart folder or a `helm pull` .tgz)"
                text = tgz.extractfile(member).read().decode()  # type: ignore[union-attr]
        else:
            return f"does not exist (relative paths start at the project folder, {Path.cwd()})"
        meta = yaml.safe_load(text)
    except (OSError, tarfile.TarError, UnicodeDecodeError, yaml.YAMLError) as e:
        return f"cannot be read as a chart: {e}"
    if not isinstance(meta, dict) or not meta.get("name") or not meta.get("version"):
        return "has a Chart.yaml without a name and version"
    return str(meta["name"]), str(meta["version"])


def secret_output(value: Secret) -> pulumi.Output[str]:
    """A secret config value as an Output the engine keeps encrypted."""
    return pulumi.Output.secret(value.reveal())
