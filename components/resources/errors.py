"""The error a component raises when it is given inputs it cannot use."""

from __future__ import annotations

import pulumi


class InvalidInput(pulumi.RunError, pulumi.InputPropertyError):
    """An input a component cannot use, named by its path in the Args.

    A RunError, so a program that misuses a component stops with the message and no traceback; an
    InputPropertyError, so a component provider serving these components reports the property.
    """

    def __init__(self, property_path: str, reason: str):
        pulumi.InputPropertyError.__init__(self, property_path, reason)
        Exception.__init__(self, f"{property_path}: {reason}")
