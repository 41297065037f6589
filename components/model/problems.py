"""Collecting config problems and raising them as one error."""

from __future__ import annotations

from components.model.types import PROJECT


class ConfigError(Exception):
    """Raised for invalid stack config. The program raises it as a RunError (resources/stack_config.py),
    which Pulumi prints without a traceback."""

    def __init__(self, problems: list[str]):
        self.problems = list(problems)
        lines = "\n".join(f"  - {p}" for p in self.problems)
        super().__init__(f"invalid stack configuration ({len(self.problems)} problem(s)):\n{lines}")


class Problems:
    """Collects every problem of one config load so the user sees all of them at once."""

    def __init__(self) -> None:
        self.items: list[str] = []

    def add(self, key: str, message: str) -> None:
        self.items.append(f"{PROJECT}:{key}: {message}")

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError(self.items)
