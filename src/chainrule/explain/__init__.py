"""Explain a backward pass step by step, and check a hand-worked one.

``explain(loss)`` reads any scalar's graph off the engine and returns an ``Explanation``
(text, markdown, LaTeX, JSON, HTML). ``load_network`` reads a TOML network file; ``explain_network``
explains it. ``check_worksheet`` grades hand-worked values against the engine's.
"""

from __future__ import annotations

import sys

from chainrule.explain import render_html, render_json, render_latex, render_markdown, render_text
from chainrule.explain.model import FORMATS, RENDERERS, Explanation, GraphNode, Quantity
from chainrule.explain.network import (
    NetworkFileError,
    NetworkSpec,
    example_paths,
    explain_network,
    load_network,
    parse_network,
    reference_path,
)
from chainrule.explain.trace import NOTATIONS, explain

# The data model does not import its renderers (that was an import circle); they are wired here.
RENDERERS.update(
    text=render_text.render_text,
    markdown=render_markdown.render_markdown,
    latex=render_latex.render_latex,
    json=render_json.render_json,
    html=render_html.render_html,
    dict=render_json.to_dict,
    html_fragment=render_html.render_html_fragment,
)


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

    def __call__(self, loss, /, *args, **kwargs) -> Explanation:
        if _is_torch_module(loss):  # chainrule.explain(model, input, target, loss="mse_loss")
            from chainrule.interop.torch import explain_torch

            return explain_torch(loss, *args, **kwargs)
        return explain(loss, *args, **kwargs)


def _is_torch_module(value) -> bool:
    """A ``torch.nn.Module``, recognised without importing PyTorch."""
    return any(c.__name__ == "Module" and c.__module__ == "torch.nn.modules.module"
               for c in type(value).__mro__)


sys.modules[__name__].__class__ = _CallableModule
