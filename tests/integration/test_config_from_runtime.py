"""The stack config as the real Pulumi engine hands it to the program: every key is checked, also
one that is in no stack file the program could read (set through the Automation API here; ESC and
`--config-file` reach a program the same way, in the config the engine sends)."""

from __future__ import annotations

import json

import pytest
from pulumi import automation as auto

from tests.harness import stack_config
from tests.integration.engine import Engine

pytestmark = pytest.mark.engine


def _load_program() -> None:
    from components.model import load_from_pulumi

    load_from_pulumi()


def _configure(stack: auto.Stack, extra: dict[str, str]) -> None:
    config, secret_keys = stack_config("dev")
    config.update(extra)
    stack.set_all_config({key: auto.ConfigValue(value, secret=key in secret_keys) for key, value in config.items()})


def test_a_key_only_the_engine_knows_is_checked(engine: Engine):
    stack = engine.stack(_load_program)
    _configure(stack, {})
    assert stack.preview().change_summary == {"create": 1}
    _configure(stack, {"vault-platform:clustr": json.dumps({"replicas": 3})})
    with pytest.raises(auto.CommandError) as err:
        stack.preview()
    output = str(err.value)
    assert "vault-platform:clustr: unknown setting (did you mean 'cluster'?)" in output
    # A config error, not a crash: Pulumi prints it without a traceback.
    assert "Traceback" not in output
