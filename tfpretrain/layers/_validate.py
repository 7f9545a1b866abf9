"""Eager argument checks shared by the layers, so that bad settings fail where they are written."""

from __future__ import annotations

import numbers


def check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value <= 0:
        raise ValueError(f"`{name}` must be a positive integer; got {value!r}.")
    return int(value)


def check_fraction(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not 0.0 <= value < 1.0:
        raise ValueError(f"`{name}` must be a number in [0, 1); got {value!r}.")
    return float(value)


def check_positive_float(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
        raise ValueError(f"`{name}` must be a number > 0; got {value!r}.")
    return float(value)
