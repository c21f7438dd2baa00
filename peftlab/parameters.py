"""A learner's parameters, checked where each is first used: one sentence, no traceback.

A notebook's parameters cell sets ``CHECKPOINT``, ``DEVICE``, ``SEED``, batch sizes, step counts...
A value that cannot work stops the first cell that uses it with a :class:`ParameterError` whose
message says what is wrong and what to set, instead of an error from deep inside a library.
"""

from __future__ import annotations

import numbers


class ParameterError(ValueError):
    """A parameter's value cannot work; the message is one sentence: what is wrong, what to set.

    Jupyter shows it alone, without a traceback (IPython calls ``_render_traceback_``): the mistake
    is in the parameters cell, not in the code that noticed it.
    """

    def _render_traceback_(self) -> list[str]:
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {self}"]


def whole_number(value: object, name: str, minimum: int, what: str, fix: str) -> int:
    """``value`` if it is a whole number of at least ``minimum``; else a :class:`ParameterError`
    saying ``name=value``, that ``what`` needs at least ``minimum``, and ``fix``."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ParameterError(f"{name}={value!r}: {what} must be a whole number of at least {minimum}; {fix}.")
    return int(value)


def check_seed(seed: object, name: str = "SEED") -> int:
    """``seed`` if Python, NumPy and torch all take it (a whole number from 0 to 2**32 - 1), else a
    :class:`ParameterError` naming ``name``."""
    whole_number(seed, name, 0, "a seed", f"set {name} in the parameters cell to 0 or more")
    if seed >= 2**32:  # type: ignore[operator]
        raise ParameterError(
            f"{name}={seed!r}: a seed must be below 2**32 (NumPy's limit); set {name} to a smaller number."
        )
    return int(seed)  # type: ignore[call-overload]


def check_batch_size(batch_size: object) -> int:
    """``batch_size`` if it is a whole number of at least 1, else a :class:`ParameterError`."""
    fix = "set BATCH_SIZE (training) or EVAL_BATCH_SIZE (evaluation) in the parameters cell to 1 or more"
    return whole_number(batch_size, "batch_size", 1, "a batch's size", fix)
