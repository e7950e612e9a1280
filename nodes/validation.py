"""The pack's own check of every widget input of its nodes, whatever the host version.

Why the pack checks and not only the host: ComfyUI 0.3.75 (which the README supports) does not
check V3 ``COMBO`` values against their options (a typo such as ``style_attention="scaled"``
silently ran the other variant), and no ComfyUI version rejects NaN/inf floats (``NaN < min``
and ``NaN > max`` are both false). Newer hosts (0.8+) do check combos; doing it here makes the
behaviour the same on all of them.

Why at the start of ``execute`` and not in ``validate_inputs``: every host (0.3.75 up to 0.33 at
least, ``execution.validate_inputs``) attaches the one result of a node's ``validate_inputs`` to
EVERY argument that function declares, and skips its own min/max/option checks for those
arguments; a failure of ``width`` was thus reported three times, under ``width``, ``height``
and ``frames``. Without ``validate_inputs`` the host keeps checking min/max per input (its
messages name the input), and the pack's checks here raise one :class:`InputError` naming only
the inputs that are wrong, before the node does any work.

Every node class of the pack is decorated with :func:`checked_inputs`; a test asserts it.
"""
from __future__ import annotations

import functools
import inspect
import math

from ..bridge.api import io
from .common import InputError

CHECKED_MARK = "__videocrafter_checked_inputs__"
MAX_LISTED_OPTIONS = 30  # a model folder can hold hundreds of files: list that many, then count the rest


def _number_problem(spec, value) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return f"{value!r} is not a number"
    if isinstance(spec, io.Float.Input) and not math.isfinite(value):
        return f"{value} is not a finite number"
    low, high = getattr(spec, "min", None), getattr(spec, "max", None)
    if low is not None and value < low:
        return f"{value} is below the minimum {low}"
    if high is not None and value > high:
        return f"{value} is above the maximum {high}"
    return None


def _options_text(options: list) -> str:
    shown = ", ".join(repr(o) for o in options[:MAX_LISTED_OPTIONS])
    more = len(options) - MAX_LISTED_OPTIONS
    return shown + (f" (and {more} more)" if more > 0 else "") if options else "(none: the folder is empty)"


def input_problem(spec, value) -> str | None:
    """What is wrong with ``value`` for the schema input ``spec`` (None when it is acceptable)."""
    if isinstance(spec, io.Combo.Input):
        options = list(spec.options or [])
        if value not in options:
            return f"{value!r} is not one of the options; valid values: {_options_text(options)}"
        return None
    if isinstance(spec, (io.Float.Input, io.Int.Input)):
        if value is None and spec.optional:
            return None
        return _number_problem(spec, value)
    return None  # linked inputs (MODEL, CONDITIONING, ...) are typed by the host


def check_inputs(schema: io.Schema, values: dict) -> None:
    """Raise one :class:`InputError` naming every widget input of ``schema`` whose value is wrong."""
    problems = []
    for spec in schema.inputs:
        if spec.id not in values:
            continue
        problem = input_problem(spec, values[spec.id])
        if problem is not None:
            problems.append(f"input '{spec.id}': {problem}")
    if problems:
        raise InputError(f"{schema.display_name or schema.node_id}: " + "; ".join(problems) + ".")


def checked_inputs(node_class: type[io.ComfyNode]) -> type[io.ComfyNode]:
    """Class decorator: ``execute`` first checks every widget input against the node's schema."""
    original = node_class.__dict__["execute"].__func__
    signature = inspect.signature(original)

    @functools.wraps(original)
    def execute(cls, *args, **kwargs):
        bound = signature.bind(cls, *args, **kwargs)  # the host passes keywords; direct callers may not
        check_inputs(cls.define_schema(), bound.arguments)
        return original(cls, *args, **kwargs)

    node_class.execute = classmethod(execute)
    setattr(node_class, CHECKED_MARK, True)
    return node_class


def is_checked(node_class: type) -> bool:
    return bool(node_class.__dict__.get(CHECKED_MARK, False))
