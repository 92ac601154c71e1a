"""JSON: every node and every named scalar, exact values, under a versioned schema.

Schema ``chainrule.explanation``, version 1 (documented in the README)::

    {"schema": "chainrule.explanation", "version": 1,
     "title": str, "notation": "reference" | "matrix", "loss": float, "lr": float | null,
     "nodes": [{"name", "op" (null for a leaf), "expression", "expression_latex", "shape",
                "value", "gradient" (dL/d node, null if unused), "parents": [str],
                "local_derivatives": {parent: {"shape": [out size, parent size],
                                               "jacobian": [[...]]} | null}}],
     "quantities": [{"name", "latex", "kind", "value", "display", "expression", "terms",
                     "equals", "layer", "alias" (the given aliases' name for it, or null)}],
     "gradients": [{"name", "latex", "elements": [[str]], "values": [[float]],
                    "layout": "in-out" | "out-in" (a weight matrix's rows) | null}],
     "update": [{"name", "latex", "elements", "values"}],
     "network": {"sizes": [int], "activations": [str | null], "loss": str, "batch": int} | null,
     with --steps N also "steps": [{"step", "loss" (before it), "weights": [{"values": [[float]],
     "layout": "in-out" | "out-in"}] (after it, laid out as "gradients" are), "biases" (after it),
     "parameters": {name: value after it}}] (every step; of many steps, the first and last 5
     unless --all-steps), "losses": [float] (before each step, every step), "loss_after_steps": float}

Values are exact float64 (``display`` is the rounded text); NaN and infinities are written as
the strings "nan", "inf", "-inf" so the file stays valid JSON.
"""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np

from chainrule.explain.model import Explanation, GradientArray
from chainrule.explain.numbers import fmt
from chainrule.explain.render_common import row

SCHEMA = "chainrule.explanation"
VERSION = 1


def _num(v: Any) -> Any:
    if isinstance(v, np.ndarray):
        return [_num(x) for x in v] if v.ndim else _num(v.item())
    if isinstance(v, (list, tuple)):
        return [_num(x) for x in v]
    v = float(v)
    if math.isfinite(v):
        return v
    return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")


def _array(a: GradientArray) -> dict:
    return {
        "name": a.name,
        "latex": a.latex,
        "elements": a.element_names,
        "values": _num(a.values),
        "layout": a.layout or None,
    }


def to_dict(e: Explanation, digits: int | None = None) -> dict:
    digits = e.digits if digits is None else digits
    nodes = []
    for n in e.nodes:
        local = {}
        for parent, jac in n.local.items():
            local[parent] = None if jac is None else {"shape": list(jac.shape), "jacobian": _num(jac)}
        nodes.append(
            {
                "name": n.name,
                "op": n.op,
                "expression": n.expression,
                "expression_latex": n.expression_latex,
                "shape": list(n.shape),
                "value": _num(np.asarray(n.value, dtype=np.float64)),
                "gradient": None if n.gradient is None else _num(np.asarray(n.gradient, dtype=np.float64)),
                "parents": list(n.parents),
                "local_derivatives": local,
            }
        )
    quantities = []
    for q in e.quantities:
        r = row(q, e, digits)
        quantities.append(
            {
                "name": q.name,
                "latex": q.latex,
                "kind": q.kind,
                "value": _num(q.value),
                "display": fmt(q.value, digits),
                "expression": r.symbolic,
                "terms": [list(t) for t in q.terms],
                "equals": q.equals or None,
                "layer": q.layer,
                "alias": r.alias or None,
            }
        )
    network = None
    if e.network is not None:
        v = e.network
        network = {
            "sizes": [v.input_size] + [layer.units for layer in v.layers],
            "activations": [layer.activation for layer in v.layers],
            "loss": v.loss,
            "batch": v.batch,
        }
    doc = {
        "schema": SCHEMA,
        "version": VERSION,
        "title": e.title,
        "notation": e.notation,
        "digits": digits,
        "loss": _num(e.loss),
        "lr": e.lr,
        "nodes": nodes,
        "quantities": quantities,
        "gradients": [_array(a) for a in e.arrays],
        "update": [_array(a) for a in e.update_arrays],
        "network": network,
    }
    if e.training is not None:  # --steps N
        t = e.training
        layouts = t.layouts or ["out-in"] * len(t.steps[0].weights)

        def laid_out(w: np.ndarray, layout: str) -> Any:
            w = np.asarray(w, dtype=np.float64)
            return _num(w.T if layout == "in-out" else w)

        doc["steps"] = [
            {
                "step": s.index,
                "loss": _num(s.loss),
                "weights": [
                    {"values": laid_out(w, layout), "layout": layout}
                    for w, layout in zip(s.weights, layouts, strict=True)
                ],
                "biases": [None if b is None else _num(np.asarray(b, dtype=np.float64)) for b in s.biases],
                "parameters": {name: _num(v) for name, _, v in s.parameters},
            }
            for s, detail in t.rows()
            if detail
        ]
        doc["losses"] = [_num(s.loss) for s in t.steps]
        doc["loss_after_steps"] = _num(t.final_loss)
    return doc


def render_json(e: Explanation, digits: int | None = None) -> str:
    return json.dumps(to_dict(e, digits), indent=2, allow_nan=False) + "\n"
