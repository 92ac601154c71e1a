"""How the explainer writes numbers: N decimals, as a hand-worked solution does.

The values themselves stay exact float64; only the display rounds. A value smaller than
10^-N is written with N significant digits in scientific notation (2.843e-05) instead of
collapsing to 0.0000, and a value that N decimals already hold exactly (a given weight such as
0.36, a local derivative of 1) is written as short as it is.
"""

from __future__ import annotations

import math

import numpy as np

DEFAULT_DIGITS = 4


def fmt(value: float, digits: int = DEFAULT_DIGITS, given: bool = False) -> str:
    """``value`` to ``digits`` decimals, or ``digits`` significant digits when it is tiny.

    A ``given`` number (an input, a weight) and a whole number are written as short as they
    are (0.36, -2.06, 1), as a hand-worked solution copies them.
    """
    v = float(value)
    if math.isnan(v) or math.isinf(v):
        return str(v)
    if v == 0.0:
        return "0"
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    fixed = f"{v:.{digits}f}"
    if given and float(fixed) == v:  # exactly representable at this precision: write it short
        return np.format_float_positional(v, trim="-")
    if abs(v) < 10.0 ** (-digits):
        return f"{v:.{max(digits - 1, 0)}e}"
    return fixed


def fmt_factor(value: float, digits: int = DEFAULT_DIGITS, given: bool = False) -> str:
    """A number inside a product: negative ones in parentheses, as (-2.06)."""
    text = fmt(value, digits, given)
    return f"({text})" if text.startswith("-") else text


def decimals_written(literal: str) -> int:
    """How many decimal places a number written as ``literal`` claims (2.8e-5 -> 6, 0.0140 -> 4)."""
    text = literal.strip().lower().lstrip("+-").replace("_", "")
    mantissa, _, exponent = text.partition("e")
    places = len(mantissa.partition(".")[2])
    return places - (int(exponent) if exponent else 0)
