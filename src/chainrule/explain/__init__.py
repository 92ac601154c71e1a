"""Explain a backward pass step by step, and check a hand-worked one.

``explain(loss)`` reads any scalar's graph off the engine and returns an ``Explanation``
(text, markdown, LaTeX, JSON, HTML). ``load_network`` reads a TOML network file; ``explain_network``
explains it. ``check_worksheet`` grades hand-worked values against the engine's.
"""

from __future__ import annotations

import sys

from chainrule.explain.model import FORMATS, Explanation, GraphNode, Quantity
from chainrule.explain.network import (
    NetworkFileError,
    NetworkSpec,
    example_paths,
    load_network,
    parse_network,
    reference_path,
)
from chainrule.explain.trace import NOTATIONS, explain


def explain_network(
    spec: NetworkSpec, *, notation: str = "reference", lr: float | None = None, digits: int = 4
) -> Explanation:
    """Build the network of a file through the engine and explain its loss."""
    return explain(spec.build(), notation=notation, lr=lr, digits=digits, title=spec.title or None)


__all__ = [
    "explain",
    "explain_network",
    "Explanation",
    "Quantity",
    "GraphNode",
    "FORMATS",
    "NOTATIONS",
    "NetworkSpec",
    "NetworkFileError",
    "load_network",
    "parse_network",
    "reference_path",
    "example_paths",
]


class _CallableModule(type(sys.modules[__name__])):
    """Lets ``chainrule.explain(loss)`` call ``explain`` while ``chainrule.explain`` stays this package."""

    def __call__(self, loss, **kwargs) -> Explanation:
        return explain(loss, **kwargs)


sys.modules[__name__].__class__ = _CallableModule
