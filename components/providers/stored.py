"""Dynamic providers live in the Pulumi state: `pulumi refresh` and `pulumi destroy` load them from
there without running the program. ``by_value`` makes dill store a provider's code rather than a
module path, so it loads in any working directory and in programs without this repository on
their path. A provider so stored may use only the standard library and Pulumi's own types.
"""

from __future__ import annotations

import types
from typing import Any

PACKAGE = "components."


def _relative(code: types.CodeType, filename: str) -> types.CodeType:
    # The state should not record where the deploying checkout happened to live.
    consts = tuple(_relative(c, filename) if isinstance(c, types.CodeType) else c for c in code.co_consts)
    return code.replace(co_filename=filename, co_consts=consts)


def _copy_function(function: types.FunctionType, filename: str) -> types.FunctionType:
    clone = types.FunctionType(_relative(function.__code__, filename), function.__globals__, function.__name__,
                               function.__defaults__, function.__closure__)
    clone.__kwdefaults__ = function.__kwdefaults__
    clone.__qualname__ = function.__qualname__
    clone.__doc__ = function.__doc__
    return clone


def by_value(cls: type) -> type:
    """A copy of ``cls`` (its functions, and its base classes from this package) that dill stores
    by value.

    dill stores a class or function by reference when it finds that very object again under its
    module and name; the copies are not the objects found there, so dill stores their code.
    """
    filename = cls.__module__.replace(".", "/") + ".py"
    namespace: dict[str, Any] = {}
    for key, value in cls.__dict__.items():
        if key in ("__dict__", "__weakref__"):
            continue
        if isinstance(value, staticmethod):
            value = staticmethod(_copy_function(value.__func__, filename))
        elif isinstance(value, classmethod):
            value = classmethod(_copy_function(value.__func__, filename))
        elif isinstance(value, types.FunctionType):
            value = _copy_function(value, filename)
        namespace[key] = value
    bases = tuple(by_value(b) if b.__module__.startswith(PACKAGE) else b for b in cls.__bases__)
    return type(cls.__name__, bases, namespace)
