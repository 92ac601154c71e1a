"""How the explainer writes numbers: N significant digits, everywhere.

The values themselves stay exact float64; only the display rounds. ``digits`` (``--digits``)
always counts significant digits: 1.3062 at 4 digits is 1.306, 2.8435e-05 is 2.843e-05, and a
value below 1e-4 or with more integer digits than N is written in scientific notation (as
Python's ``g`` format does), trailing zeros kept, so each number shows the precision it has.
A number that N digits hold exactly (a weight such as 0.36, a local derivative of 1, a sum that
comes out exactly 0.5) is written as short as it is: trailing zeros would claim a rounding.
"""

from __future__ import annotations

import math

DEFAULT_DIGITS = 4


def fmt(value: float, digits: int = DEFAULT_DIGITS, given: bool = False) -> str:
    """``value`` to ``digits`` significant digits (at least 1).

    A number that ``digits`` hold exactly (an input, a weight, an exact 0.5) is written as short
    as it is (0.36, -2.06, 1, 0.5), as a hand-worked solution copies it. ``given`` is kept for
    callers that mark given numbers; it no longer changes the result.
    """
    v = float(value)
    if math.isnan(v) or math.isinf(v):
        return str(v)
    if v == 0.0:
        return "0"
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    digits = max(int(digits), 1)
    short = f"{v:.{digits}g}"
    if float(short) == v:  # exact at these digits (given, or computed exactly: 0.05 + 0.2 + 0.25)
        return short  # as short as it is: trailing zeros would claim a rounding that did not happen
    text = f"{v:#.{digits}g}"
    mantissa, e, exponent = text.partition("e")
    return mantissa.rstrip(".") + e + exponent


def fmt_factor(value: float, digits: int = DEFAULT_DIGITS, given: bool = False) -> str:
    """A number inside a product: negative ones in parentheses, as (-2.06)."""
    text = fmt(value, digits, given)
    return f"({text})" if text.startswith("-") else text


def fmt_fixed(value: float, decimals: int) -> str:
    """``value`` to a number of decimal places (a hand-worked solution's 4-decimal column)."""
    return f"{float(value):.{decimals}f}"


def decimals_written(literal: str) -> int:
    """How many decimal places a number written as ``literal`` claims (2.8e-5 -> 6, 0.0140 -> 4)."""
    text = literal.strip().lower().lstrip("+-").replace("_", "")
    mantissa, _, exponent = text.partition("e")
    places = len(mantissa.partition(".")[2])
    return places - (int(exponent) if exponent else 0)
