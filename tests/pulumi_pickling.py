"""What a process that runs many Pulumi programs must undo between them.

pulumi.dynamic's serialize_provider wraps ``pickle._Pickler._batch_setitems`` in one more sorting
wrapper on every call and never restores it. A program run once per process (as `pulumi up` runs
one) never notices; a process that runs program after program (the engine tier's inline programs,
the unit tier's long-lived harness worker) reaches Python's recursion limit after some hundreds of
dynamic resources."""

from __future__ import annotations

import pickle


def undo_dynamic_provider_pickling_patch() -> int:
    """Unwrap every sorting wrapper serialize_provider left on the pure-Python Pickler, and return
    how many layers it found. Called before each program a long-lived process runs."""
    layers = 0
    function = pickle._Pickler._batch_setitems
    for _ in range(100_000):
        if "batch_set_items_sorted" not in getattr(function, "__qualname__", ""):
            break
        (function,) = [c.cell_contents for c in function.__closure__ or () if callable(c.cell_contents)]
        layers += 1
    pickle._Pickler._batch_setitems = function
    return layers
