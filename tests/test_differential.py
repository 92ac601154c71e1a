"""Differential testing: random computation graphs, chainrule vs HIPS autograd vs PyTorch.

A hypothesis strategy builds a random graph (random shapes with broadcasting, up to 50
operations, nodes reused) from the operation table ``OPS`` below. The graph is rendered as
three straight-line programs — chainrule, autograd.numpy, torch — and each program is what
actually runs, so a failure prints the shrunk graph as code you can paste and run.

Every gradient (of each leaf, and of one intermediate through ``cr.grad``) must agree with
autograd, and with torch when it is importable, to 1e-10 relative in float64. float32 graphs
must stay float32 and agree with a float64 run within a tolerance derived from float32's
unit roundoff and the graph's own measured sensitivity.

Adding an operation (an activation or a loss of ``chainrule.functional``, say) is one ``Op``
entry: its three spellings, the domain of each argument, and how to draw its parameters.

``CHAINRULE_DIFFERENTIAL_GRAPHS=N`` runs N graphs per test instead of the default (see the
README's Reliability section); the default profile is derandomized so CI is reproducible.
"""
from __future__ import annotations

import importlib.util
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

import chainrule as cr
from chainrule import ops

autograd = pytest.importorskip("autograd", reason="HIPS autograd is the reference oracle (test extra)")
import autograd.numpy as anp  # noqa: E402
import autograd.scipy.special as asp  # noqa: E402

HAVE_TORCH = importlib.util.find_spec("torch") is not None
if HAVE_TORCH:
    import torch
    import torch.nn.functional as TF
else:  # the torch oracle is optional: graphs are still checked against autograd
    torch = TF = None

try:
    import chainrule.functional as F
except ImportError:  # functional lands in another issue; the core table runs without it
    F = None

N_GRAPHS = int(os.environ.get("CHAINRULE_DIFFERENTIAL_GRAPHS", "0")) or None
RTOL64 = 1e-10
MAX_DEPTH = 50
MAGNITUDE = 1e4  # an op whose result leaves [-1e4, 1e4] is not added (keeps exp chains finite)


def _settings(default: int) -> settings:
    return settings(max_examples=N_GRAPHS or default, deadline=None, derandomize=True,
                    database=None, print_blob=False,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.filter_too_much])


# --- rendering values as code ----------------------------------------------------------

def lit(a: Any, torch_tensor: bool = False) -> str:
    """A NumPy (or torch) literal that round-trips exactly (Python float repr is shortest-exact)."""
    a = np.asarray(a)
    make, module = ("torch.tensor", "torch") if torch_tensor else ("np.array", "np")
    if a.dtype == bool:
        dtype = f"{module}.bool" if torch_tensor else "bool"
    else:
        dtype = f"{module}.{'int64' if a.dtype.kind in 'iu' else a.dtype.name}"
    text = f"{make}({a.tolist()!r}, dtype={dtype})"
    # an empty array's list loses its shape ((0, 2) reads back as (0,)): say it again
    return f"{text}.reshape({a.shape!r})" if a.size == 0 else text


def torch_lit(a: Any) -> str:
    return lit(a, torch_tensor=True)


class Const:
    """A constant operand (index array, condition, target): rendered per framework."""

    def __init__(self, value: Any):
        self.value = np.asarray(value)

    def code(self, fw: str) -> str:
        return torch_lit(self.value) if fw == "th" else lit(self.value)


def _index_code(index: tuple, fw: str) -> str:
    parts = []
    for p in index:
        if isinstance(p, slice):
            s = "" if p.start is None else str(p.start)
            s += ":" + ("" if p.stop is None else str(p.stop))
            if p.step is not None:
                s += f":{p.step}"
            parts.append(s)
        elif isinstance(p, np.ndarray):
            parts.append(Const(p).code(fw))
        elif p is None:
            parts.append("None")
        else:
            parts.append(str(p))
    return ", ".join(parts) if len(parts) != 1 else parts[0]


# --- the operation table -----------------------------------------------------------------

Template = Callable[[list[str], dict], str] | str


def _render(template: Template, args: list[str], params: dict, fw: str) -> str:
    if callable(template):
        return template(args, params)
    return template.format(*args, **{k: v.code(fw) if isinstance(v, Const) else v for k, v in params.items()})


# Domains: a predicate on an operand's value and, when it fails, a fix-up written as code
# with core ops (it becomes a node of the graph, so the printed program shows it).
DOMAINS: dict[str, tuple[Callable[[np.ndarray], bool], str]] = {
    "any": (lambda v: True, "{0}"),
    "positive": (lambda v: bool(np.all(v > 0.2)), "{0} * {0} + 0.5"),
    "nonzero": (lambda v: bool(np.all(np.abs(v) > 0.2)), "{0} * {0} + 0.5"),
    "small": (lambda v: bool(np.all(np.abs(v) < 3)), "{0} / (abs({0}) + 1.0) * 2.5"),
    "moderate": (lambda v: bool(np.all(np.abs(v) < 30)), "{0} / (abs({0}) + 1.0) * 25.0"),
    "no_zeros": (lambda v: bool(np.all(np.abs(v) > 1e-3)), "({0} + 0.75)"),  # no zero vectors
    "unit": (lambda v: bool(np.all((v > 0.05) & (v < 0.95))),
             "(({0} / (abs({0}) + 1.0)) * 0.4375 + 0.5)"),
    "above1": (lambda v: bool(np.all(v > 1.2)), "{0} * {0} + 1.5"),  # arccosh
}


@dataclass(repr=False)
class Op:
    """One differentiable operation, spelled for each framework.

    ``params(gen, shapes)`` draws the operation's parameters for operands of ``shapes`` (a
    dict, rendered into the templates by name) or returns None when it does not apply.
    ``operands`` says how the generator picks operands: "unary", "broadcast" (a second
    operand broadcast-compatible with the first), or a custom chooser.
    """

    name: str
    cr: Template
    ag: Template
    th: Template
    operands: str = "unary"
    domains: tuple[str, ...] = ("any",)
    params: Callable[[Gen, list[tuple]], dict | None] = lambda gen, shapes: {}
    kinked: bool = False  # piecewise: excluded from float32 sensitivity probes
    requires: str | None = None  # attribute of chainrule.functional the entry needs

    def __repr__(self) -> str:
        return f"Op({self.name!r})"


def _axes_param(gen: Gen, shape: tuple, extremum: bool = False) -> dict | None:
    nd = len(shape)
    if nd == 0 or gen.flag():
        axes = None
    else:
        k = gen.integer(1, nd)
        axes = tuple(sorted(gen.sample(range(nd), k)))
        if gen.flag():  # NumPy's negative axes
            axes = tuple(a - nd for a in axes)
    reduced = range(nd) if axes is None else axes
    if 0 in shape and (extremum or axes is None) and any(shape[a] == 0 for a in reduced):
        return None  # max of nothing is undefined; torch and NumPy differ on sums over every axis
    return {"axis": axes, "keepdims": gen.flag(), "ndim": nd}


def _reduce_th(fn: str) -> Callable[[list[str], dict], str]:
    def render(a: list[str], p: dict) -> str:
        if p["ndim"] == 0:
            return f"{a[0]}.clone()" if fn in ("amax", "amin") else f"torch.{fn}({a[0]})"
        axes = tuple(range(p["ndim"])) if p["axis"] is None else p["axis"]
        return f"torch.{fn}({a[0]}, dim={axes!r}, keepdim={p['keepdims']})"
    return render


def _reshape_param(gen: Gen, shape: tuple) -> dict:
    size = int(np.prod(shape, dtype=np.int64))
    if size == 0:
        return {"shape": (0,)}
    divisors = [d for d in range(1, size + 1) if size % d == 0]
    choice = gen.integer(0, 3)
    if choice == 0:
        new = (size,)
    elif choice == 1:
        new = tuple(reversed(shape))
    elif choice == 2:
        d = gen.choice(divisors)
        new = (d, -1)
    else:
        d = gen.choice(divisors)
        new = (1, d, size // d)
    return {"shape": new}


def _transpose_param(gen: Gen, shape: tuple) -> dict:
    nd = len(shape)
    if gen.flag() or nd < 2:
        return {"axes": None, "ndim": nd}
    return {"axes": tuple(gen.sample(range(nd), nd)), "ndim": nd}


def _transpose_th(a: list[str], p: dict) -> str:
    axes = tuple(reversed(range(p["ndim"]))) if p["axes"] is None else p["axes"]
    if len(axes) > 1:
        return f"{a[0]}.permute{axes!r}"
    return f"{a[0]}.permute({axes[0]})" if axes else f"{a[0]}.clone()"  # a new node, as in chainrule


def _swap_param(gen: Gen, shape: tuple) -> dict | None:
    nd = len(shape)
    if nd < 2:
        return None
    return {"a1": gen.integer(-nd, nd - 1), "a2": gen.integer(-nd, nd - 1)}


def _expand_param(gen: Gen, shape: tuple) -> dict | None:
    nd = len(shape)
    if nd >= 4:
        return None
    return {"axis": gen.integer(-nd - 1, nd)}


def _squeeze_param(gen: Gen, shape: tuple) -> dict | None:
    ones = [i for i, n in enumerate(shape) if n == 1]
    if not ones:
        return None
    return {"axis": None if gen.flag() else gen.choice(ones)}


def _squeeze_th(a: list[str], p: dict) -> str:
    return f"torch.squeeze({a[0]})" if p["axis"] is None else f"torch.squeeze({a[0]}, {p['axis']})"


def _broadcast_param(gen: Gen, shape: tuple) -> dict | None:
    new = [n if n != 1 else gen.integer(1, 3) for n in shape]
    if len(new) < 4 and gen.flag():
        new.insert(0, gen.integer(1, 3))
    return {"shape": tuple(new)}


def _index_param(gen: Gen, shape: tuple) -> dict | None:
    nd = len(shape)
    if nd == 0 or 0 in shape:
        return None
    kind = gen.integer(0, 3)
    if kind == 0:  # integer array with repeats along one axis: gradients must accumulate
        axis = gen.integer(0, nd - 1)
        idx = np.array([gen.integer(-shape[axis], shape[axis] - 1) for _ in range(gen.integer(1, 5))])
        index = tuple([slice(None)] * axis + [idx])
    elif kind == 1:  # boolean mask over the whole array
        mask = gen.rng.random(shape) < 0.6
        index = (mask,)
    elif kind == 2:  # an integer on the first axis
        index = (gen.integer(-shape[0], shape[0] - 1),)
    else:  # basic slices with steps
        index = []
        for n in shape[: gen.integer(1, nd)]:
            start = gen.integer(0, n - 1)
            index.append(slice(start if start else None, None, gen.integer(1, 2) if n > 1 else None))
        index = tuple(index)
    return {"index": index}


def _where_param(gen: Gen, shapes: list) -> dict:
    out = np.broadcast_shapes(*shapes)
    cond = gen.rng.random(out) < 0.5
    return {"cond": Const(cond), "shape": out}


def _clip_param(gen: Gen, shape: tuple) -> dict:
    lo = round(float(gen.rng.normal()) - 0.5, 3)
    hi = lo + round(float(gen.rng.random()) * 2 + 0.1, 3)
    which = gen.integer(0, 2)
    return {"lo": gen.const(lo) if which != 2 else None, "hi": gen.const(hi) if which != 1 else None}


def _clip_cr(a: list[str], p: dict) -> str:
    return f"cr.clip({a[0]}, {p['lo']!r}, {p['hi']!r})"


def _clip_ag(a: list[str], p: dict) -> str:
    # PyTorch's clamp convention (gradient passes at the bounds, inclusive), which chainrule
    # documents; autograd's own clip excludes the bounds, so spell the convention out.
    lo = "-np.inf" if p["lo"] is None else repr(p["lo"])
    hi = "np.inf" if p["hi"] is None else repr(p["hi"])
    return f"anp.where(({a[0]} >= {lo}) & ({a[0]} <= {hi}), {a[0]}, anp.clip({a[0]}, {lo}, {hi}))"


def _clip_th(a: list[str], p: dict) -> str:
    return f"torch.clamp({a[0]}, {p['lo']!r}, {p['hi']!r})"


def _axis_for_join(gen: Gen, shapes: list) -> dict:
    return {"axis": gen.integer(-len(shapes[0]), len(shapes[0]) - 1)}


def _stack_axis(gen: Gen, shapes: list) -> dict:
    return {"axis": gen.integer(-len(shapes[0]) - 1, len(shapes[0]))}


def _scalar_param(gen: Gen, shapes: list) -> dict:
    return {"c": gen.const(round(float(gen.rng.normal()) * 2, 3) or 0.5)}


def _join(sep: str = ", ") -> Callable[[list[str]], str]:
    return lambda a: sep.join(a)


CORE_OPS: list[Op] = [
    # elementwise, two tensors broadcast against each other
    Op("add", "{0} + {1}", "{0} + {1}", "{0} + {1}", "broadcast", ("any", "any")),
    Op("sub", "{0} - {1}", "{0} - {1}", "{0} - {1}", "broadcast", ("any", "any")),
    Op("mul", "{0} * {1}", "{0} * {1}", "{0} * {1}", "broadcast", ("any", "any")),
    Op("div", "{0} / {1}", "{0} / {1}", "{0} / {1}", "broadcast", ("any", "nonzero")),
    Op("pow", "{0} ** {1}", "{0} ** {1}", "{0} ** {1}", "broadcast", ("positive", "small")),
    Op("maximum", "cr.maximum({0}, {1})", "anp.maximum({0}, {1})", "torch.maximum({0}, {1})",
       "broadcast", ("any", "any"), kinked=True),
    Op("minimum", "cr.minimum({0}, {1})", "anp.minimum({0}, {1})", "torch.minimum({0}, {1})",
       "broadcast", ("any", "any"), kinked=True),
    # autograd's where does not reduce a broadcast operand's gradient: broadcast it first
    Op("where", "cr.where({cond!s}, {0}, {1})",
       lambda a, p: (f"anp.where({p['cond'].code('ag')}, {a[0]} + anp.zeros({p['shape']!r}), "
                     f"{a[1]} + anp.zeros({p['shape']!r}))"),
       lambda a, p: f"torch.where({p['cond'].code('th')}, {a[0]}, {a[1]})",
       "broadcast", ("any", "any"), params=_where_param, kinked=True),
    # a tensor with a Python scalar, on either side (the reflected operators)
    Op("radd", "{c!r} + {0}", "{c!r} + {0}", "{c!r} + {0}", params=_scalar_param),
    Op("rsub", "{c!r} - {0}", "{c!r} - {0}", "{c!r} - {0}", params=_scalar_param),
    Op("rmul", "{c!r} * {0}", "{c!r} * {0}", "{c!r} * {0}", params=_scalar_param),
    Op("rdiv", "{c!r} / {0}", "{c!r} / {0}", "{c!r} / {0}", domains=("nonzero",), params=_scalar_param),
    Op("divs", "{0} / {c!r}", "{0} / {c!r}", "{0} / {c!r}", params=_scalar_param),
    Op("square", "{0} ** 2", "{0} ** 2", "{0} ** 2"),
    Op("cube", "{0} ** 3", "{0} ** 3", "{0} ** 3"),
    Op("pow_half", "{0} ** 0.5", "{0} ** 0.5", "{0} ** 0.5", domains=("positive",)),
    Op("pow_neg", "{0} ** -1.5", "{0} ** -1.5", "{0} ** -1.5", domains=("positive",)),
    Op("rpow", "1.75 ** {0}", "1.75 ** {0}", "1.75 ** {0}", domains=("moderate",)),
    Op("neg", "-{0}", "-{0}", "-{0}"),
    Op("abs", "abs({0})", "anp.abs({0})", "torch.abs({0})", kinked=True),
    Op("abs_fn", "cr.abs({0})", "anp.abs({0})", "torch.abs({0})", kinked=True),
    Op("exp", "cr.exp({0})", "anp.exp({0})", "torch.exp({0})", domains=("small",)),
    Op("exp_method", "{0}.exp()", "anp.exp({0})", "torch.exp({0})", domains=("small",)),
    Op("log", "cr.log({0})", "anp.log({0})", "torch.log({0})", domains=("positive",)),
    Op("sqrt", "cr.sqrt({0})", "anp.sqrt({0})", "torch.sqrt({0})", domains=("positive",)),
    Op("clip", _clip_cr, _clip_ag, _clip_th, params=lambda g, s: _clip_param(g, s[0]), kinked=True),
    # reductions
    Op("sum", "{0}.sum(axis={axis!r}, keepdims={keepdims})",
       "anp.sum({0}, axis={axis!r}, keepdims={keepdims})",
       _reduce_th("sum"), params=lambda g, s: _axes_param(g, s[0])),
    Op("mean", "cr.mean({0}, axis={axis!r}, keepdims={keepdims})",
       "anp.mean({0}, axis={axis!r}, keepdims={keepdims})", _reduce_th("mean"),
       params=lambda g, s: _axes_param(g, s[0])),
    Op("max", "{0}.max(axis={axis!r}, keepdims={keepdims})",
       "anp.max({0}, axis={axis!r}, keepdims={keepdims})",
       _reduce_th("amax"), params=lambda g, s: _axes_param(g, s[0], extremum=True), kinked=True),
    Op("min", "cr.min({0}, axis={axis!r}, keepdims={keepdims})",
       "anp.min({0}, axis={axis!r}, keepdims={keepdims})", _reduce_th("amin"),
       params=lambda g, s: _axes_param(g, s[0], extremum=True), kinked=True),
    # shapes and indexing
    Op("reshape", "{0}.reshape({shape!r})", "anp.reshape({0}, {shape!r})", "{0}.reshape({shape!r})",
       params=lambda g, s: _reshape_param(g, s[0])),
    Op("transpose", lambda a, p: f"{a[0]}.T" if p["axes"] is None else f"cr.transpose({a[0]}, {p['axes']!r})",
       "anp.transpose({0}, {axes!r})", _transpose_th, params=lambda g, s: _transpose_param(g, s[0])),
    Op("swapaxes", "{0}.swapaxes({a1}, {a2})", "anp.swapaxes({0}, {a1}, {a2})",
       "torch.swapaxes({0}, {a1}, {a2})", params=lambda g, s: _swap_param(g, s[0])),
    Op("expand_dims", "cr.expand_dims({0}, {axis})", "anp.expand_dims({0}, {axis})",
       "torch.unsqueeze({0}, {axis})", params=lambda g, s: _expand_param(g, s[0])),
    Op("squeeze", "{0}.squeeze({axis!r})", "anp.squeeze({0}, {axis!r})", _squeeze_th,
       params=lambda g, s: _squeeze_param(g, s[0])),
    Op("broadcast_to", "cr.broadcast_to({0}, {shape!r})", "{0} + anp.zeros({shape!r})",
       "torch.broadcast_to({0}, {shape!r})", params=lambda g, s: _broadcast_param(g, s[0])),
    Op("getitem", lambda a, p: f"{a[0]}[{_index_code(p['index'], 'cr')}]",
       lambda a, p: f"{a[0]}[{_index_code(p['index'], 'ag')}]",
       lambda a, p: f"{a[0]}[{_index_code(p['index'], 'th')}]",
       params=lambda g, s: _index_param(g, s[0])),
    Op("concatenate", lambda a, p: f"cr.concatenate([{', '.join(a)}], axis={p['axis']})",
       lambda a, p: f"anp.concatenate([{', '.join(a)}], axis={p['axis']})",
       lambda a, p: f"torch.cat([{', '.join(a)}], dim={p['axis']})",
       "join", params=_axis_for_join),
    Op("stack", lambda a, p: f"cr.stack([{', '.join(a)}], axis={p['axis']})",
       lambda a, p: f"anp.stack([{', '.join(a)}], axis={p['axis']})",
       lambda a, p: f"torch.stack([{', '.join(a)}], dim={p['axis']})",
       "stack", params=_stack_axis),
    Op("matmul", "{0} @ {1}", "anp.matmul({0}, {1})", "torch.matmul({0}, {1})", "matmul"),
    Op("matmul_fn", "cr.matmul({0}, {1})", "anp.matmul({0}, {1})", "torch.matmul({0}, {1})", "matmul"),
]

# Primitives that the random graphs do not draw, and why (the coverage test reads this).
NOT_DRAWN = {
    "astype": "a precision-changing cast; float32/float64 casts are tested in test_numerics",
    "untake": "getitem's VJP: it appears in the recorded backward of the grad-of-grad graphs "
              "(test_random_grad_of_grad_graphs_match_oracles) and in test_ops",
    "setitem": "t[i] = v is a statement, not an expression: tested in test_inplace against torch",
}


# --- NumPy's operations (chainrule.numpy_api, issue 12): the primitives of ops_elementwise,
# ops_reduce and ops_linalg, and a few compositions --------------------------------------------

def _unary_np(name: str, domain: str = "any", th: str | None = None, ag: str | None = None,
              kinked: bool = False) -> Op:
    return Op(name, f"cr.{name}({{0}})", f"{ag or 'anp.' + name}({{0}})",
              f"{th or 'torch.' + name}({{0}})", domains=(domain,), kinked=kinked)


def _binary_np(name: str, domains: tuple[str, str], th: str | None = None,
               ag: Template | None = None, kinked: bool = False) -> Op:
    return Op(name, f"cr.{name}({{0}}, {{1}})", ag or f"anp.{name}({{0}}, {{1}})",
              f"{th or 'torch.' + name}({{0}}, {{1}})", "broadcast", domains, kinked=kinked)


def _prod_param(gen: Gen, shape: tuple) -> dict | None:
    p = _axes_param(gen, shape)
    if p is not None:
        p["shape"] = shape
    return p


def _prod_th(a: list[str], p: dict) -> str:
    # torch.prod reduces one dim at a time: each axis in turn, keeping dims, then the shape
    nd = p["ndim"]
    axes = set(range(nd)) if p["axis"] is None else {ax % nd for ax in p["axis"]}
    expr = a[0]
    for ax in sorted(axes):
        expr = f"torch.prod({expr}, dim={ax}, keepdim=True)"
    if p["keepdims"]:
        return expr
    return f"{expr}.reshape({tuple(n for i, n in enumerate(p['shape']) if i not in axes)!r})"


def _logsumexp_th(a: list[str], p: dict) -> str:
    axes = tuple(range(p["ndim"])) if p["axis"] is None else p["axis"]
    if p["ndim"] == 0:
        return f"torch.logsumexp({a[0]}.reshape(1), 0)"
    return f"torch.logsumexp({a[0]}, dim={axes!r}, keepdim={p['keepdims']})"


def _scan_param(gen: Gen, shape: tuple) -> dict:
    if not shape or gen.flag():
        return {"axis": None}
    return {"axis": gen.integer(-len(shape), len(shape) - 1)}


def _scan_th(fn: str) -> Callable[[list[str], dict], str]:
    def render(a: list[str], p: dict) -> str:
        if p["axis"] is None:
            return f"torch.{fn}({a[0]}.reshape(-1), 0)"
        return f"torch.{fn}({a[0]}, {p['axis']})"
    return render


def _var_param(gen: Gen, shape: tuple) -> dict | None:
    p = _axes_param(gen, shape)
    if p is None or not shape:
        return None
    reduced = shape if p["axis"] is None else [shape[ax] for ax in p["axis"]]
    p["ddof"] = gen.integer(0, 1)
    if int(np.prod(reduced)) - p["ddof"] <= 0:
        return None
    return p


def _var_th(fn: str) -> Callable[[list[str], dict], str]:
    def render(a: list[str], p: dict) -> str:
        axes = tuple(range(p["ndim"])) if p["axis"] is None else p["axis"]
        return f"torch.{fn}({a[0]}, dim={axes!r}, correction={p['ddof']}, keepdim={p['keepdims']})"
    return render


def _diagonal_param(gen: Gen, shape: tuple) -> dict | None:
    return {"k": min(shape[-2:])} if len(shape) >= 2 else None


def _roll_param(gen: Gen, shape: tuple) -> dict | None:
    if not shape:
        return None
    return {"shift": gen.integer(-3, 3), "axis": gen.integer(-len(shape), len(shape) - 1)}


def _tri_param(gen: Gen, shape: tuple) -> dict | None:
    return {"k": gen.integer(-1, 1)} if len(shape) >= 2 else None


def _moveaxis_param(gen: Gen, shape: tuple) -> dict | None:
    if len(shape) < 2:
        return None
    return {"src": gen.integer(0, len(shape) - 1), "dst": gen.integer(-len(shape), -1)}


def _last_axis(gen: Gen, shape: tuple) -> dict | None:
    return {} if shape else None


NUMPY_OPS: list[Op] = [
    _unary_np("sin"), _unary_np("cos"), _unary_np("tan", "small"),
    _unary_np("arcsin", "unit"), _unary_np("arccos", "unit"), _unary_np("arctan"),
    _unary_np("sinh", "small"), _unary_np("cosh", "small"), _unary_np("arcsinh"),
    _unary_np("arccosh", "above1"), _unary_np("arctanh", "unit"), _unary_np("exp2", "small"),
    _unary_np("log2", "positive"), _unary_np("log10", "positive"), _unary_np("expm1", "small"),
    _unary_np("log1p", "positive"), _unary_np("square"), _unary_np("reciprocal", "nonzero"),
    _unary_np("erf", ag="asp.erf"), _unary_np("sign", kinked=True),
    _unary_np("floor", kinked=True), _unary_np("ceil", kinked=True),
    _unary_np("trunc", kinked=True), _unary_np("round", kinked=True),
    _binary_np("arctan2", ("any", "nonzero")), _binary_np("hypot", ("nonzero", "nonzero")),
    _binary_np("logaddexp", ("any", "any")),
    _binary_np("fmax", ("any", "any"), kinked=True), _binary_np("fmin", ("any", "any"), kinked=True),
    _binary_np("mod", ("any", "nonzero"), th="torch.remainder", kinked=True),
    # autograd has no fmod VJP: a - b trunc(a / b) is the same function
    _binary_np("fmod", ("any", "nonzero"), ag="({0} - {1} * anp.trunc({0} / {1}))", kinked=True),
    Op("prod", "cr.prod({0}, axis={axis!r}, keepdims={keepdims})",
       "anp.prod({0}, axis={axis!r}, keepdims={keepdims})", _prod_th, domains=("nonzero",),
       params=lambda g, s: _prod_param(g, s[0])),
    # autograd's logsumexp of a 0-d input has shape (1,): logsumexp(x) = x there
    Op("logsumexp", "cr.logsumexp({0}, axis={axis!r}, keepdims={keepdims})",
       lambda a, p: (f"asp.logsumexp({a[0]}, axis={p['axis']!r}, keepdims={p['keepdims']})"
                     if p["ndim"] else f"({a[0]} + 0.0)"), _logsumexp_th,
       params=lambda g, s: _axes_param(g, s[0], extremum=True)),
    Op("cumsum", "cr.cumsum({0}, axis={axis!r})", "anp.cumsum({0}, axis={axis!r})",
       _scan_th("cumsum"), params=lambda g, s: _scan_param(g, s[0])),
    Op("var", "cr.var({0}, axis={axis!r}, ddof={ddof}, keepdims={keepdims})",
       "anp.var({0}, axis={axis!r}, ddof={ddof}, keepdims={keepdims})", _var_th("var"),
       params=lambda g, s: _var_param(g, s[0])),
    Op("std", "cr.std({0}, axis={axis!r}, ddof={ddof}, keepdims={keepdims})",
       "anp.std({0}, axis={axis!r}, ddof={ddof}, keepdims={keepdims})", _var_th("std"),
       params=lambda g, s: _var_param(g, s[0])),
    # einsum: an elementwise product with '...' broadcasting, and a sum over the last axis
    Op("einsum", "cr.einsum('...,...->...', {0}, {1})", "({0} * {1})",
       "torch.einsum('...,...->...', {0}, {1})", "broadcast", ("any", "any")),
    Op("einsum_sum", "cr.einsum('...i->...', {0})", "anp.sum({0}, axis=-1)",
       "torch.einsum('...i->...', {0})", params=lambda g, s: _last_axis(g, s[0])),
    # autograd's diagonal VJP assumes square matrices: index the diagonal instead
    Op("diagonal", "cr.diagonal({0}, 0, -2, -1)", "{0}[..., np.arange({k}), np.arange({k})]",
       "torch.diagonal({0}, 0, -2, -1)", params=lambda g, s: _diagonal_param(g, s[0])),
    Op("roll", "cr.roll({0}, {shift}, {axis})", "anp.roll({0}, {shift}, {axis})",
       "torch.roll({0}, {shift}, {axis})", params=lambda g, s: _roll_param(g, s[0])),
    Op("tril", "cr.tril({0}, {k})", "anp.tril({0}, {k})", "torch.tril({0}, {k})",
       params=lambda g, s: _tri_param(g, s[0])),
    Op("triu", "cr.triu({0}, {k})", "anp.triu({0}, {k})", "torch.triu({0}, {k})",
       params=lambda g, s: _tri_param(g, s[0])),
    Op("moveaxis", "cr.moveaxis({0}, {src}, {dst})", "anp.moveaxis({0}, {src}, {dst})",
       "torch.movedim({0}, {src}, {dst})", params=lambda g, s: _moveaxis_param(g, s[0])),
]

# Primitives of the NumPy modules that the random graphs do not draw, and why.
NUMPY_NOT_DRAWN = {
    "cumprod": "autograd has no cumprod VJP; tested against torch in tests/test_numpy_api.py",
}


# --- chainrule.functional: activations and losses (entries skip until F has the name) ---

def _sigmoid_ag(x: str) -> str:
    return f"(0.5 * (anp.tanh(0.5 * {x}) + 1.0))"


def _red(p: dict) -> str:
    return p["reduction"]


def _reduction_param(gen: Gen, shapes: list) -> dict:
    # 'mean' of no elements is chainrule's documented ValueError (PyTorch gives NaN)
    empty = any(0 in shape for shape in shapes)
    return {"reduction": gen.choice(["sum", "none"] if empty else ["mean", "sum", "none"])}


def _reduce_ag(expr: str, p: dict) -> str:
    return {"mean": f"anp.mean({expr})", "sum": f"anp.sum({expr})", "none": expr}[p["reduction"]]


def _target_param(kind: str) -> Callable[[Gen, list], dict | None]:
    def draw(gen: Gen, shapes: list) -> dict | None:
        shape = shapes[0]
        p = _reduction_param(gen, shapes)
        if kind == "same":
            p["target"] = Const((gen.rng.normal(size=shape) * 2).astype(gen.dtype))
        elif kind == "pm1":
            p["target"] = Const(np.where(gen.rng.random(shape) < 0.5, -1.0, 1.0).astype(gen.dtype))
        elif kind == "prob":
            p["target"] = Const(gen.rng.random(shape).astype(gen.dtype))
        elif kind == "class":
            if len(shape) != 2 or shape[1] < 2:
                return None
            p["target"] = Const(gen.rng.integers(0, shape[1], size=shape[0]))
        return p
    return draw


def _huber_param(gen: Gen, shapes: list) -> dict:
    p = _target_param("same")(gen, shapes)
    p["delta"] = gen.const(round(float(gen.rng.random()) * 2 + 0.1, 3))
    return p


def _huber_ag(a: list[str], p: dict) -> str:
    r = f"({a[0]} - {p['target'].code('ag')})"
    d = p["delta"]
    body = f"anp.where(anp.abs({r}) <= {d!r}, 0.5 * {r} ** 2, {d!r} * (anp.abs({r}) - 0.5 * {d!r}))"
    return _reduce_ag(body, p)


def _ce_param(gen: Gen, shapes: list) -> dict | None:
    p = _target_param("class")(gen, shapes)
    if p is not None:
        p["smoothing"] = gen.choice([0.0, 0.0, 0.1])
    return p


def _ce_ag(a: list[str], p: dict) -> str:
    t = p["target"].value
    c = f"{a[0]}.shape[1]"
    onehot = f"(np.arange({c}) == {lit(t)}[:, None])"
    ls = p["smoothing"]
    y = f"({onehot} * {1 - ls!r} + {ls!r} / {c})"
    logp = f"({a[0]} - asp.logsumexp({a[0]}, axis=1, keepdims=True))"
    return _reduce_ag(f"-anp.sum({y} * {logp}, axis=1)", p)


def _positive_part(z: str) -> str:
    """max(0, z) with derivative 0 at z = 0: the subgradient chainrule documents for margins
    (hinge at y*s = 1), as relu; autograd's maximum would split a tie 0.5/0.5."""
    return f"anp.where({z} > 0, {z}, 0.0)"


def _hinge_ag(a: list[str], p: dict) -> str:
    return _reduce_ag(_positive_part(f"(1.0 - {p['target'].code('ag')} * {a[0]})"), p)


def _hinge_th(a: list[str], p: dict) -> str:
    body = f"torch.relu(1.0 - {p['target'].code('th')} * {a[0]})"
    return {"mean": f"torch.mean({body})", "sum": f"torch.sum({body})", "none": body}[p["reduction"]]


def _softmax_param(gen: Gen, shapes: list) -> dict | None:
    nd = len(shapes[0])
    if nd == 0:
        return None
    return {"axis": gen.integer(-nd, nd - 1)}


def _lrelu_param(gen: Gen, shapes: list) -> dict:
    return {"slope": gen.choice([0.01, 0.2, 1.5])}


def _elu_param(gen: Gen, shapes: list) -> dict:
    return {"alpha": gen.choice([1.0, 0.5, 2.0])}


def _gelu_param(gen: Gen, shapes: list) -> dict:
    return {"approximate": gen.choice(["none", "tanh"])}


def _gelu_ag(a: list[str], p: dict) -> str:
    x = a[0]
    if p["approximate"] == "tanh":
        return f"(0.5 * {x} * (1.0 + anp.tanh(0.7978845608028654 * ({x} + 0.044715 * {x} ** 3))))"
    return f"(0.5 * {x} * (1.0 + asp.erf({x} / 1.4142135623730951)))"


def _mm_param(gen: Gen, shapes: list) -> dict | None:
    p = _target_param("class")(gen, shapes)
    if p is not None:
        p["p"] = gen.choice([1, 2])
        p["margin"] = gen.choice([1.0, 0.5, 2.0])
    return p


def _mm_ag(a: list[str], p: dict) -> str:
    t = lit(p["target"].value)
    x = a[0]
    xy = f"{x}[np.arange({x}.shape[0]), {t}][:, None]"
    margin = p["margin"]
    terms = _positive_part(f"({margin!r} - {xy} + {x})") + f" ** {p['p']}"
    mask = f"(np.arange({x}.shape[1]) != {t}[:, None])"
    return _reduce_ag(f"(anp.sum({terms} * {mask}, axis=1) / {x}.shape[1])", p)


def _cos_param(gen: Gen, shapes: list) -> dict | None:
    out = np.broadcast_shapes(*shapes)
    axes = [k for k, n in enumerate(out) if n > 1]  # along an axis of 1, cos is +-1 (see _apart_rows)
    if not axes:
        return None
    return {"axis": gen.choice(axes) - (len(out) if gen.flag() else 0), "shape": out}


def _cos_ag(a: list[str], p: dict) -> str:
    x, y, ax = f"({a[0]} + anp.zeros({p['shape']!r}))", f"({a[1]} + anp.zeros({p['shape']!r}))", p["axis"]
    norm = lambda v: f"anp.maximum(anp.sqrt(anp.sum({v} * {v}, axis={ax})), 1e-8)"  # noqa: E731
    return f"(anp.sum({x} * {y}, axis={ax}) / ({norm(x)} * {norm(y)}))"


def _cel_param(gen: Gen, shapes: list) -> dict | None:
    shape = shapes[0]
    if len(shape) not in (1, 2):
        return None
    p = _reduction_param(gen, shapes)
    p["target"] = Const(np.where(gen.rng.random(shape[:-1]) < 0.5, -1.0, 1.0).astype(gen.dtype))
    p["margin"] = gen.choice([0.0, 0.3, -0.2])
    return p


def _cel_ag(a: list[str], p: dict) -> str:
    x, y = a
    cos = (f"(anp.sum({x} * {y}, axis=-1) / anp.sqrt((anp.sum({x} * {x}, axis=-1) + 1e-12) * "
           f"(anp.sum({y} * {y}, axis=-1) + 1e-12)))")
    margin = p["margin"]
    per = f"anp.where({lit(p['target'].value)} == 1, 1.0 - {cos}, {_positive_part(f'({cos} - {margin!r})')})"
    return _reduce_ag(per, p)


def _conv1d_param(gen: Gen, shapes: list, pool: bool = False) -> dict | None:
    """A 1-D convolution (or average pooling) of the operand flattened to (1, 1, size)."""
    size = int(np.prod(shapes[0], dtype=np.int64))
    k, s, d = gen.integer(1, 3), gen.integer(1, 2), 1 if pool else gen.integer(1, 2)
    p = gen.integer(0, k // 2) if pool else gen.integer(0, 1)
    if size == 0 or d * (k - 1) + 1 > size + 2 * p:
        return None
    out = (size + 2 * p - d * (k - 1) - 1) // s + 1
    weight = np.full((1, 1, k), 1.0 / k) if pool else gen.rng.normal(size=(1, 1, k))
    return {"k": k, "stride": s, "padding": p, "dilation": d, "out": out,
            "weight": Const(weight.astype(gen.dtype))}


def _conv1d_ag(a: list[str], p: dict) -> str:
    """Cross-correlation written out: one strided slice of the padded row per kernel cell."""
    pads = f"((0, 0), (0, 0), ({p['padding']}, {p['padding']}))"
    padded = f"anp.pad(anp.reshape({a[0]}, (1, 1, -1)), {pads}, mode='constant')"
    s, d, out = p["stride"], p["dilation"], p["out"]
    w = p["weight"].value.reshape(-1)
    return "(" + " + ".join(f"{float(w[j])!r} * {padded}[..., {j * d}:{j * d + s * (out - 1) + 1}:{s}]"
                            for j in range(p["k"])) + ")"


def _norm_ag(x: str, axes: str) -> str:
    centred = f"({x} - anp.mean({x}, axis={axes}, keepdims=True))"
    return f"({centred} / anp.sqrt(anp.mean({centred} ** 2, axis={axes}, keepdims=True) + 1e-05))"


def _layer_norm_param(gen: Gen, shapes: list) -> dict | None:
    shape = shapes[0]
    return {"n": shape[-1]} if len(shape) >= 1 and shape[-1] >= 2 else None


def _batch_norm_param(gen: Gen, shapes: list) -> dict | None:
    shape = shapes[0]
    if len(shape) < 2 or int(np.prod(shape, dtype=np.int64)) // max(shape[1], 1) < 2 or shape[1] == 0:
        return None
    return {"axes": (0, *range(2, len(shape)))}


def _pad_param(gen: Gen, shapes: list) -> dict | None:
    nd = len(shapes[0])
    if nd == 0:
        return None
    amounts = tuple(gen.integer(0, 2) for _ in range(2 * gen.integer(1, min(nd, 2))))
    k = len(amounts) // 2
    pairs = [(0, 0)] * (nd - k) + [(amounts[2 * i], amounts[2 * i + 1]) for i in reversed(range(k))]
    return {"pad": amounts, "pairs": tuple(pairs), "value": gen.choice([0.0, 1.5])}


def _embedding_param(gen: Gen, shapes: list) -> dict | None:
    shape = shapes[0]
    if len(shape) != 2 or shape[0] == 0:
        return None
    rows = tuple(gen.integer(1, 3) for _ in range(gen.integer(1, 2)))
    return {"index": Const(gen.rng.integers(0, shape[0], size=rows))}  # repeats accumulate


FUNCTIONAL_OPS: list[Op] = [
    Op("linear", lambda a, p: f"F.linear({', '.join(a)})",
       lambda a, p: f"(anp.matmul({a[0]}, {a[1]}.T)" + (f" + {a[2]})" if len(a) > 2 else ")"),
       lambda a, p: f"TF.linear({', '.join(a)})", "linear", requires="linear"),
    Op("sigmoid", "F.sigmoid({0})", lambda a, p: _sigmoid_ag(a[0]), "torch.sigmoid({0})", requires="sigmoid"),
    Op("tanh", "F.tanh({0})", "anp.tanh({0})", "torch.tanh({0})", requires="tanh"),
    Op("relu", "F.relu({0})", "anp.where({0} > 0, {0}, 0.0)", "torch.relu({0})", kinked=True,
       requires="relu"),
    Op("leaky_relu", "F.leaky_relu({0}, negative_slope={slope!r})",
       "anp.where({0} > 0, {0}, {slope!r} * {0})",
       "TF.leaky_relu({0}, negative_slope={slope!r})", params=_lrelu_param, kinked=True,
       requires="leaky_relu"),
    Op("elu", "F.elu({0}, alpha={alpha!r})",
       "anp.where({0} > 0, {0}, {alpha!r} * (anp.exp(anp.where({0} > 0, 0.0, {0})) - 1.0))",
       "TF.elu({0}, alpha={alpha!r})", params=_elu_param, kinked=True, requires="elu"),
    Op("gelu", "F.gelu({0}, approximate={approximate!r})", _gelu_ag,
       "TF.gelu({0}, approximate={approximate!r})", params=_gelu_param, requires="gelu"),
    # PyTorch's softplus (and chainrule's) is x itself above its threshold of 20
    Op("softplus", "F.softplus({0})", "anp.where({0} > 20.0, {0}, anp.logaddexp(0.0, {0}))",
       "TF.softplus({0})", requires="softplus"),
    Op("softmax", "F.softmax({0}, axis={axis})",
       "anp.exp({0} - asp.logsumexp({0}, axis={axis}, keepdims=True))", "torch.softmax({0}, dim={axis})",
       params=_softmax_param, requires="softmax"),
    Op("log_softmax", "F.log_softmax({0}, axis={axis})",
       "({0} - asp.logsumexp({0}, axis={axis}, keepdims=True))", "torch.log_softmax({0}, dim={axis})",
       params=_softmax_param, requires="log_softmax"),
    Op("mse_loss", lambda a, p: f"F.mse_loss({a[0]}, {p['target'].code('cr')}, reduction={_red(p)!r})",
       lambda a, p: _reduce_ag(f"({a[0]} - {p['target'].code('ag')}) ** 2", p),
       lambda a, p: f"TF.mse_loss({a[0]}, {p['target'].code('th')}, reduction={_red(p)!r})",
       params=_target_param("same"), requires="mse_loss"),
    # regression losses whose target is itself a node of the graph (PyTorch differentiates both)
    Op("mse_loss_both", "F.mse_loss({0}, {1}, reduction={reduction!r})",
       lambda a, p: _reduce_ag(f"({a[0]} - {a[1]}) ** 2", p),
       "TF.mse_loss({0}, {1}, reduction={reduction!r})", "same", ("any", "any"),
       params=_reduction_param, requires="mse_loss"),
    Op("l1_loss_both", "F.l1_loss({0}, {1}, reduction={reduction!r})",
       lambda a, p: _reduce_ag(f"anp.abs({a[0]} - {a[1]})", p),
       "TF.l1_loss({0}, {1}, reduction={reduction!r})", "same", ("any", "any"),
       params=_reduction_param, kinked=True, requires="l1_loss"),
    Op("huber_loss_both", "F.huber_loss({0}, {1}, delta=0.7, reduction={reduction!r})",
       lambda a, p: _reduce_ag(f"anp.where(anp.abs({a[0]} - {a[1]}) <= 0.7, 0.5 * ({a[0]} - {a[1]}) ** 2, "
                               f"0.7 * (anp.abs({a[0]} - {a[1]}) - 0.35))", p),
       "TF.huber_loss({0}, {1}, delta=0.7, reduction={reduction!r})", "same", ("any", "any"),
       params=_reduction_param, kinked=True, requires="huber_loss"),
    Op("l1_loss", lambda a, p: f"F.l1_loss({a[0]}, {p['target'].code('cr')}, reduction={_red(p)!r})",
       lambda a, p: _reduce_ag(f"anp.abs({a[0]} - {p['target'].code('ag')})", p),
       lambda a, p: f"TF.l1_loss({a[0]}, {p['target'].code('th')}, reduction={_red(p)!r})",
       params=_target_param("same"), kinked=True, requires="l1_loss"),
    Op("l2_loss", lambda a, p: f"F.l2_loss({a[0]}, {p['target'].code('cr')}, reduction={_red(p)!r})",
       lambda a, p: (f"0.5 * anp.sum(({a[0]} - {p['target'].code('ag')}) ** 2)" if p["reduction"] == "sum"
                     else _reduce_ag(f"0.5 * ({a[0]} - {p['target'].code('ag')}) ** 2", p)),
       lambda a, p: {"sum": f"0.5 * torch.sum(({a[0]} - {p['target'].code('th')}) ** 2)",
                     "mean": f"0.5 * torch.mean(({a[0]} - {p['target'].code('th')}) ** 2)",
                     "none": f"0.5 * ({a[0]} - {p['target'].code('th')}) ** 2"}[p["reduction"]],
       params=_target_param("same"), requires="l2_loss"),
    Op("huber_loss",
       lambda a, p: (f"F.huber_loss({a[0]}, {p['target'].code('cr')}, delta={p['delta']!r}, "
                     f"reduction={_red(p)!r})"),
       _huber_ag,
       lambda a, p: (f"TF.huber_loss({a[0]}, {p['target'].code('th')}, delta={p['delta']!r}, "
                     f"reduction={_red(p)!r})"),
       params=_huber_param, kinked=True, requires="huber_loss"),
    Op("hinge_loss", lambda a, p: f"F.hinge_loss({a[0]}, {p['target'].code('cr')}, reduction={_red(p)!r})",
       _hinge_ag, _hinge_th, params=_target_param("pm1"), kinked=True, requires="hinge_loss"),
    Op("bce_with_logits",
       lambda a, p: (f"F.binary_cross_entropy_with_logits({a[0]}, {p['target'].code('cr')}, "
                     f"reduction={_red(p)!r})"),
       lambda a, p: _reduce_ag(f"(anp.logaddexp(0.0, {a[0]}) - {p['target'].code('ag')} * {a[0]})", p),
       lambda a, p: (f"TF.binary_cross_entropy_with_logits({a[0]}, {p['target'].code('th')}, "
                     f"reduction={_red(p)!r})"),
       params=_target_param("prob"), requires="binary_cross_entropy_with_logits"),
    Op("bce",
       lambda a, p: f"F.binary_cross_entropy({a[0]}, {p['target'].code('cr')}, reduction={_red(p)!r})",
       lambda a, p: _reduce_ag(f"-({p['target'].code('ag')} * anp.log({a[0]}) + "
                               f"(1.0 - {p['target'].code('ag')}) * anp.log(1.0 - {a[0]}))", p),
       lambda a, p: f"TF.binary_cross_entropy({a[0]}, {p['target'].code('th')}, reduction={_red(p)!r})",
       domains=("unit",), params=_target_param("prob"), requires="binary_cross_entropy"),
    Op("cross_entropy",
       lambda a, p: (f"F.cross_entropy({a[0]}, {p['target'].code('cr')}, label_smoothing={p['smoothing']!r}, "
                     f"reduction={_red(p)!r})"),
       _ce_ag,
       lambda a, p: (f"TF.cross_entropy({a[0]}, {p['target'].code('th')}, "
                     f"label_smoothing={p['smoothing']!r}, "
                     f"reduction={_red(p)!r})"),
       params=_ce_param, requires="cross_entropy"),
    Op("multi_margin_loss",
       lambda a, p: (f"F.multi_margin_loss({a[0]}, {p['target'].code('cr')}, p={p['p']}, "
                     f"margin={p['margin']!r}, "
                     f"reduction={_red(p)!r})"),
       _mm_ag,
       lambda a, p: (f"TF.multi_margin_loss({a[0]}, {p['target'].code('th')}, p={p['p']}, "
                     f"margin={p['margin']!r}, reduction={_red(p)!r})"),
       params=_mm_param, kinked=True, requires="multi_margin_loss"),
    Op("cosine_similarity", "F.cosine_similarity({0}, {1}, axis={axis})", _cos_ag,
       "TF.cosine_similarity({0}, {1}, dim={axis})", "apart_broadcast", ("no_zeros", "no_zeros"),
       params=_cos_param, requires="cosine_similarity"),
    Op("cosine_embedding_loss",
       lambda a, p: (f"F.cosine_embedding_loss({a[0]}, {a[1]}, {p['target'].code('cr')}, "
                     f"margin={p['margin']!r}, "
                     f"reduction={_red(p)!r})"),
       _cel_ag,
       lambda a, p: (f"TF.cosine_embedding_loss({a[0]}, {a[1]}, {p['target'].code('th')}, "
                     f"margin={p['margin']!r}, reduction={_red(p)!r})"),
       "apart", ("no_zeros", "no_zeros"), params=_cel_param, kinked=True, requires="cosine_embedding_loss"),
    # layers' maps (issue 12): conv1d and avg_pool1d of the operand as one row, normalisations,
    # constant padding, embedding rows. conv2d/3d and max pooling: see test_conv / test_pooling.
    Op("conv1d", "F.conv1d({0}.reshape(1, 1, -1), {weight}, stride={stride}, padding={padding}, "
       "dilation={dilation})", _conv1d_ag,
       "TF.conv1d({0}.reshape(1, 1, -1), {weight}, stride={stride}, padding={padding}, dilation={dilation})",
       params=_conv1d_param, requires="conv1d"),
    Op("avg_pool1d", "F.avg_pool1d({0}.reshape(1, 1, -1), {k}, stride={stride}, padding={padding})",
       _conv1d_ag, "TF.avg_pool1d({0}.reshape(1, 1, -1), {k}, stride={stride}, padding={padding})",
       params=lambda gen, shapes: _conv1d_param(gen, shapes, pool=True), requires="avg_pool1d"),
    Op("layer_norm", "F.layer_norm({0}, ({n},))", lambda a, p: _norm_ag(a[0], "-1"),
       "TF.layer_norm({0}, ({n},))", params=_layer_norm_param, requires="layer_norm"),
    Op("batch_norm", "F.batch_norm({0}, None, None, training=True)",
       lambda a, p: _norm_ag(a[0], repr(p["axes"])), "TF.batch_norm({0}, None, None, training=True)",
       params=_batch_norm_param, requires="batch_norm"),
    Op("pad", "F.pad({0}, {pad!r}, value={value!r})",
       "anp.pad({0}, {pairs!r}, mode='constant', constant_values={value!r})",
       "TF.pad({0}, {pad!r}, value={value!r})", params=_pad_param, requires="pad"),
    Op("embedding", "F.embedding({index}, {0})", "{0}[{index}]", "TF.embedding({index}, {0})",
       params=_embedding_param, requires="embedding"),
]

# PyTorch's other activations and losses (issue 12)


def _kl_param(gen: Gen, shapes: list) -> dict | None:
    shape = shapes[0]
    p = _reduction_param(gen, shapes)
    if shape and shape[0] and gen.flag():
        p["reduction"] = "batchmean"
    p["target"] = Const((gen.rng.random(shape) + 0.05).astype(gen.dtype))
    p["log_target"] = gen.flag()
    return p


def _kl_ag(a: list[str], p: dict) -> str:
    y = p["target"].code("ag")
    per = (f"(anp.exp({y}) * ({y} - {a[0]}))" if p["log_target"] else
           f"({y} * (anp.log({y}) - {a[0]}))")
    if p["reduction"] == "batchmean":
        return f"(anp.sum({per}) / {a[0]}.shape[0])"
    return _reduce_ag(per, p)


def _nll_ag(a: list[str], p: dict) -> str:
    x, t = a[0], lit(p["target"].value)
    return _reduce_ag(f"(-{x}[np.arange({x}.shape[0]), {t}])", p)


def _hard(x: str, lo: float, hi: float, mid: str) -> str:
    return f"anp.where({x} <= {lo!r}, {lo!r}, anp.where({x} >= {hi!r}, {hi!r}, {mid}))"


FUNCTIONAL_OPS += [
    Op("logsigmoid", "F.logsigmoid({0})", "(-anp.logaddexp(0.0, -{0}))", "TF.logsigmoid({0})",
       requires="logsigmoid"),
    Op("silu", "F.silu({0})", lambda a, p: f"({a[0]} * {_sigmoid_ag(a[0])})", "TF.silu({0})",
       requires="silu"),
    Op("selu", "F.selu({0})",
       "(1.0507009873554805 * anp.where({0} > 0, {0}, 1.6732632423543772 * "
       "(anp.exp(anp.where({0} > 0, 0.0, {0})) - 1.0)))", "TF.selu({0})", kinked=True,
       requires="selu"),
    Op("celu", "F.celu({0}, alpha={alpha!r})",
       "anp.where({0} > 0, {0}, {alpha!r} * (anp.exp(anp.where({0} > 0, 0.0, {0}) / {alpha!r}) - 1.0))",
       "TF.celu({0}, alpha={alpha!r})", params=_elu_param, kinked=True, requires="celu"),
    Op("mish", "F.mish({0})", "({0} * anp.tanh(anp.logaddexp(0.0, {0})))", "TF.mish({0})",
       requires="mish"),
    Op("hardswish", "F.hardswish({0})",
       lambda a, p: f"({a[0]} * {_hard(a[0], -3.0, 3.0, a[0])} / 6.0 + 0.5 * {a[0]})",
       "TF.hardswish({0})", kinked=True, requires="hardswish"),
    Op("hardsigmoid", "F.hardsigmoid({0})",
       # torch's own hardsigmoid backward uses the float32 constant 1.0f/6: relu6(x + 3)/6 is exact
       lambda a, p: f"({_hard(a[0], -3.0, 3.0, a[0])} / 6.0 + 0.5)", "(TF.relu6({0} + 3.0) / 6.0)",
       kinked=True, requires="hardsigmoid"),
    Op("hardtanh", "F.hardtanh({0})", lambda a, p: _hard(a[0], -1.0, 1.0, a[0]), "TF.hardtanh({0})",
       kinked=True, requires="hardtanh"),
    Op("relu6", "F.relu6({0})", lambda a, p: _hard(a[0], 0.0, 6.0, a[0]), "TF.relu6({0})",
       kinked=True, requires="relu6"),
    Op("softsign", "F.softsign({0})", "({0} / (1.0 + anp.abs({0})))", "TF.softsign({0})",
       requires="softsign"),
    Op("softmin", "F.softmin({0}, axis={axis})",
       "anp.exp(-{0} - asp.logsumexp(-{0}, axis={axis}, keepdims=True))", "TF.softmin({0}, dim={axis})",
       params=_softmax_param, requires="softmin"),
    Op("nll_loss", lambda a, p: f"F.nll_loss({a[0]}, {p['target'].code('cr')}, reduction={_red(p)!r})",
       _nll_ag, lambda a, p: f"TF.nll_loss({a[0]}, {p['target'].code('th')}, reduction={_red(p)!r})",
       params=_target_param("class"), requires="nll_loss"),
    Op("smooth_l1_loss_both", "F.smooth_l1_loss({0}, {1}, beta=0.6, reduction={reduction!r})",
       lambda a, p: _reduce_ag(f"anp.where(anp.abs({a[0]} - {a[1]}) < 0.6, 0.5 * ({a[0]} - {a[1]}) ** 2"
                               f" / 0.6, anp.abs({a[0]} - {a[1]}) - 0.3)", p),
       "TF.smooth_l1_loss({0}, {1}, beta=0.6, reduction={reduction!r})", "same", ("any", "any"),
       params=_reduction_param, kinked=True, requires="smooth_l1_loss"),
    Op("kl_div", lambda a, p: (f"F.kl_div({a[0]}, {p['target'].code('cr')}, reduction={_red(p)!r}, "
                               f"log_target={p['log_target']})"),
       _kl_ag, lambda a, p: (f"TF.kl_div({a[0]}, {p['target'].code('th')}, reduction={_red(p)!r}, "
                             f"log_target={p['log_target']})"),
       params=_kl_param, requires="kl_div"),
]


def available_ops(table: list[Op]) -> list[Op]:
    return [op for op in table if op.requires is None or (F is not None and hasattr(F, op.requires))]


# --- the graph generator -------------------------------------------------------------------

class Gen:
    """Choices drawn through hypothesis (so they shrink) and values from a seeded rng."""

    def __init__(self, draw: Callable, seed: int, dtype: Any = np.float64):
        self.draw = draw
        self.rng = np.random.default_rng(seed)
        self.dtype = np.dtype(dtype)  # float constants (targets) are drawn in the graph's dtype

    def const(self, value: float) -> float:
        """A scalar constant exactly representable in the graph's dtype (so that float32 and
        its float64 twin compute with the same number)."""
        return float(np.asarray(value, dtype=self.dtype))

    def integer(self, lo: int, hi: int) -> int:
        return self.draw(st.integers(lo, hi))

    def flag(self) -> bool:
        return self.draw(st.booleans())

    def choice(self, seq: Any) -> Any:
        seq = list(seq)
        return seq[self.integer(0, len(seq) - 1)]

    def sample(self, seq: Any, k: int) -> list:
        return self.draw(st.permutations(list(seq)))[:k]


@dataclass
class Node:
    var: str
    shape: tuple
    code: dict[str, str] = field(default_factory=dict)  # framework -> right-hand side


@dataclass(repr=False)
class Graph:
    dtype: np.dtype
    leaves: list[tuple[str, np.ndarray]]
    nodes: list[Node]
    outputs: list[tuple[str, np.ndarray]]  # (var, weight): loss = sum((var * weight).sum())
    probe: str | None  # an intermediate whose gradient is also compared, via cr.grad
    ops_used: list[str]
    kinked: bool = False
    uses: dict[str, int] = field(default_factory=dict)  # var -> how many ops read it

    def program(self, fw: str) -> str:
        lines = []
        for name, value in self.leaves:
            if fw == "cr":
                lines.append(f"{name} = cr.tensor({lit(value)}, requires_grad=True)")
            elif fw == "th":
                lines.append(f"{name} = {torch_lit(value)}.requires_grad_(True)")
        for node in self.nodes:
            lines.append(f"{node.var} = {node.code[fw]}")
        lt = torch_lit if fw == "th" else lit
        terms = [f"({var} * {lt(w)}).sum()" for var, w in self.outputs]
        lines.append("loss = " + " + ".join(terms))
        return "\n".join(lines)

    def _repr_pretty_(self, printer: Any, cycle: bool) -> None:  # how hypothesis prints it
        printer.text(repr(self))

    def __repr__(self) -> str:
        code = self.program("cr")
        probe = f"; also cr.grad(loss, [{self.probe}])" if self.probe else ""
        return ("\n# chainrule program (differentiate loss w.r.t. "
                + ", ".join(n for n, _ in self.leaves) + f"{probe}):\n"
                + "import numpy as np\nimport chainrule as cr\nimport chainrule.functional as F\n"
                + code + "\nloss.backward()\n\n# autograd.numpy spelling:\n" + self.program("ag") + "\n")


def _broadcastable(a: tuple, b: tuple) -> bool:
    try:
        np.broadcast_shapes(a, b)
        return True
    except ValueError:
        return False


def _leaf_shapes(gen: Gen) -> list[tuple]:
    base = tuple(gen.integer(1, 4) for _ in range(gen.integer(0, 3)))
    shapes = []
    for _ in range(gen.integer(1, 3)):
        drop = gen.integer(0, len(base))
        shapes.append(tuple(1 if gen.integer(0, 3) == 0 else n for n in base[drop:]))
    return shapes


def _apart(a: np.ndarray, b: np.ndarray) -> bool:
    a, b = a.ravel().astype(np.float64), b.ravel().astype(np.float64)
    denominator = np.linalg.norm(a) * np.linalg.norm(b)
    return bool(denominator > 0 and abs(a @ b) / denominator < 0.99)


def _apart_rows(a: np.ndarray, b: np.ndarray) -> bool:
    """``_apart`` for every row along the last axis, the vectors cosine_embedding_loss compares:
    rows of one element are always parallel (cos = +-1, gradient exactly 0, computed in float32
    as a difference of terms ~1/|a|, as PyTorch's is)."""
    if a.ndim == 1:
        return a.size > 1 and _apart(a, b)
    return a.shape[-1] > 1 and all(_apart(x, y) for x, y in zip(a, b, strict=True))


def _choose_operands(gen: Gen, op: Op, pool: list[int], shapes: dict[int, tuple],
                     values: list[np.ndarray]) -> list[int] | None:
    """Indices of the nodes an op applies to: recent nodes favoured, any node reusable."""
    def pick(candidates: list[int]) -> int | None:
        if not candidates:
            return None
        if gen.flag():  # favour depth: one of the three newest
            return candidates[-1 - gen.integer(0, min(2, len(candidates) - 1))]
        return gen.choice(candidates)

    first = pick(pool)
    if first is None:
        return None
    s0 = shapes[first]
    if op.operands == "unary":
        return [first]
    if op.operands == "broadcast":
        second = pick([i for i in pool if _broadcastable(s0, shapes[i])])
        return None if second is None else ([first, second] if gen.flag() else [second, first])
    if op.operands in ("join", "stack"):
        if len(s0) == 0:
            return None
        if op.operands == "stack":
            same = [i for i in pool if shapes[i] == s0]
        else:  # same shape except along the join axis, which the params then pick as axis 0
            same = [i for i in pool if len(shapes[i]) == len(s0) and shapes[i][1:] == s0[1:]]
        return [first] + [pick(same) for _ in range(gen.integer(1, 2))]
    if op.operands == "same":  # a second operand of exactly the same shape
        if len(s0) == 0:
            return None
        second = pick([i for i in pool if shapes[i] == s0])
        return None if second is None else [first, second]
    if op.operands == "apart":  # same shape, and not parallel: cos(v, v) = 1 has a gradient of
        if len(s0) == 0:  # exactly 0 that float32 computes as a difference of large terms
            return None
        second = pick([i for i in pool if shapes[i] == s0 and _apart_rows(values[first], values[i])])
        return None if second is None else [first, second]
    if op.operands == "apart_broadcast":  # as "apart", after broadcasting (cosine_similarity)
        def apart(i: int) -> bool:
            if not _broadcastable(s0, shapes[i]):
                return False
            return _apart(*np.broadcast_arrays(values[first], values[i]))
        second = pick([i for i in pool if apart(i)])
        return None if second is None else ([first, second] if gen.flag() else [second, first])
    if op.operands == "linear":  # x (..., in), weight (out, in), optional bias (out,)
        if len(s0) == 0:
            return None
        weight = pick([i for i in pool if len(shapes[i]) == 2 and shapes[i][1] == s0[-1]])
        if weight is None:
            return None
        bias = pick([i for i in pool if shapes[i] == (shapes[weight][0],)]) if gen.flag() else None
        return [first, weight] + ([] if bias is None else [bias])
    if op.operands == "matmul":
        if len(s0) == 0:
            return None
        k = s0[-1]
        cands = [i for i in pool if (len(shapes[i]) == 1 and shapes[i][0] == k)
                 or (len(shapes[i]) >= 2 and shapes[i][-2] == k and (len(s0) == 1 or _broadcastable(
                     s0[:-2], shapes[i][:-2])))]
        second = pick(cands)
        return None if second is None else [first, second]
    raise AssertionError(op.operands)


@st.composite
def graphs(draw: Callable, table: list[Op], dtype: Any = np.float64, max_depth: int = MAX_DEPTH) -> Graph:
    gen = Gen(draw, draw(st.integers(0, 2**32 - 1)), dtype)
    dtype = np.dtype(dtype)
    leaves = [(f"x{i}", gen.rng.normal(size=s).astype(dtype)) for i, s in enumerate(_leaf_shapes(gen))]
    env: dict[str, Any] = {"cr": cr, "np": np, "F": F}
    values: list[np.ndarray] = []
    shapes: dict[int, tuple] = {}
    names: list[str] = []
    for name, value in leaves:
        env[name] = cr.tensor(value)
        values.append(value)
        shapes[len(names)] = value.shape
        names.append(name)
    nodes: list[Node] = []
    ops_used: list[str] = []
    kinked = False
    consumed: set[int] = set()
    uses: dict[str, int] = {}

    def emit(code: dict[str, str], allow_reject: bool = True) -> int | None:
        var = f"v{len(names)}"
        try:
            with np.errstate(all="ignore"):
                out = eval(code["cr"], env)
        except (ValueError, TypeError, IndexError) as exc:
            raise AssertionError(f"chainrule rejected a valid op: {var} = {code['cr']}: {exc}") from exc
        data = np.asarray(out.data)
        too_big = data.size and np.max(np.abs(data)) > MAGNITUDE
        if allow_reject and (not np.all(np.isfinite(data)) or too_big):
            return None
        env[var] = out
        nodes.append(Node(var, data.shape, code))
        shapes[len(names)] = data.shape
        values.append(data)
        names.append(var)
        return len(names) - 1

    depth = gen.integer(1, max_depth)
    for _ in range(depth):
        op = gen.choice(table)
        pool = list(range(len(names)))
        chosen = _choose_operands(gen, op, pool, shapes, values)
        if chosen is None:
            continue
        # bring each operand into the op's domain, through a fix-up node when needed
        fixed = []
        for pos, idx in enumerate(chosen):
            domain = op.domains[min(pos, len(op.domains) - 1)]
            ok, fix = DOMAINS[domain]
            if not ok(values[idx]):
                fixed_idx = emit({fw: fix.format(names[idx]) for fw in ("cr", "ag", "th")}, False)
                consumed.add(idx)
                idx = fixed_idx
            fixed.append(idx)
        params = op.params(gen, [shapes[i] for i in fixed])
        if params is None:
            continue
        if op.operands == "join":
            params = {"axis": 0}
        args = [names[i] for i in fixed]
        code = {fw: _render(getattr(op, fw), args, params, fw) for fw in ("cr", "ag", "th")}
        if emit(code) is not None:
            consumed.update(fixed)
            for i in fixed:
                uses[names[i]] = uses.get(names[i], 0) + 1
            ops_used.append(op.name)
            kinked |= op.kinked
    sinks = [i for i in range(len(names)) if i not in consumed]  # unused leaves too
    outputs = [(names[i], gen.rng.normal(size=shapes[i]).astype(dtype)) for i in sinks]
    inner = [n.var for n in nodes if n.var in {names[i] for i in consumed}]
    probe = gen.choice(inner) if inner and gen.flag() else None
    return Graph(dtype, leaves, nodes, outputs, probe, ops_used, kinked, uses)


# --- running a graph in each framework -------------------------------------------------------

def run_chainrule(g: Graph) -> tuple[float, list[np.ndarray], np.ndarray | None, dict]:
    env: dict[str, Any] = {"cr": cr, "np": np, "F": F}
    exec(g.program("cr"), env)
    loss = env["loss"]
    probe_grad = None
    if g.probe is not None:
        (pg,) = cr.grad(loss, [env[g.probe]], retain_graph=True)
        probe_grad = pg.data
    leaves = [env[name] for name, _ in g.leaves]
    loss.backward()
    return float(loss.item()), [t.grad for t in leaves], probe_grad, env


def run_autograd(g: Graph) -> tuple[float, list[np.ndarray]]:
    names = [n for n, _ in g.leaves]
    body = g.program("ag").replace("\n", "\n    ")
    src = f"def f({', '.join(names)}):\n    {body}\n    return loss\n"
    env: dict[str, Any] = {"anp": anp, "np": np, "asp": asp}
    exec(src, env)
    f = env["f"]
    values = tuple(v for _, v in g.leaves)
    # one argnum at a time: autograd's tuple-of-arrays gradients mis-accumulate broadcast shapes
    grads = [autograd.grad(f, i)(*values) for i in range(len(values))]
    return float(f(*values)), [np.asarray(x) for x in grads]


def run_torch(g: Graph) -> tuple[float, list[np.ndarray], np.ndarray | None, float]:
    """Loss, leaf gradients, the probe's gradient, and the largest gradient of any node."""
    env: dict[str, Any] = {"torch": torch, "TF": TF, "np": np}
    exec(g.program("th"), env)
    loss = env["loss"]
    inner = [n.var for n in g.nodes if env[n.var].requires_grad]
    found = torch.autograd.grad(loss, [env[v] for v in inner], retain_graph=True,
                                allow_unused=True) if inner else ()
    node_grads = {v: t.numpy() for v, t in zip(inner, found, strict=True) if t is not None}
    loss.backward()
    probe = node_grads.get(g.probe) if g.probe is not None else None
    leaf_grads = [env[n].grad.numpy() for n, _ in g.leaves]
    return float(loss.item()), leaf_grads, probe, _largest(list(node_grads.values()))


def autograd_node_scale(g: Graph) -> float:
    """The largest gradient of any node of the graph, from autograd alone (torch not needed).

    Each node's value gets a zero added, ``v_k = op(...) + e_k``; the gradient with respect to
    ``e_k`` at 0 is the gradient with respect to node k. This is the scale against which sums
    that cancel to ~0 are judged (``assert_close``'s ``floor``), so the tolerance is the same
    with and without PyTorch installed.
    """
    names = [n for n, _ in g.leaves]
    body = [f"{node.var} = ({node.code['ag']}) + e[{k}]" for k, node in enumerate(g.nodes)]
    body.append(g.program("ag").splitlines()[-1])  # the loss line
    src = f"def f(e, {', '.join(names)}):\n    " + "\n    ".join(body) + "\n    return loss\n"
    env: dict[str, Any] = {"anp": anp, "np": np, "asp": asp}
    exec(src, env)
    zeros = [np.zeros(node.shape) for node in g.nodes]
    if not zeros:
        return 0.0
    return _largest(list(autograd.grad(env["f"], 0)(zeros, *(v for _, v in g.leaves))))


def assert_close(got: np.ndarray, want: np.ndarray, rtol: float, what: str, graph: Graph,
                 floor: float = 0.0) -> None:
    """Elementwise relative agreement, with cancellation room scaled to the array's largest entry."""
    got = np.asarray(got, dtype=np.float64)
    want = np.asarray(want, dtype=np.float64)
    assert got.shape == want.shape, f"{what}: shape {got.shape}, oracle {want.shape}\n{graph!r}"
    scale = float(np.max(np.abs(want))) if want.size else 0.0
    err = np.abs(got - want)
    # Elementwise relative error; entries that cancel to ~0 are judged against the array's
    # largest entry and against ``floor``, the largest gradient of any node of the graph: sums
    # of contributions that cancel leave rounding residue (chainrule's exact 0, torch's 1e-16).
    bound = rtol * (np.abs(want) + scale + floor)
    if not np.all(err <= bound):
        k = int(np.argmax(err - bound))
        raise AssertionError(
            f"{what}: element {tuple(int(i) for i in np.unravel_index(k, want.shape))} is {got.flat[k]!r}, "
            f"oracle {want.flat[k]!r} (|diff| {err.flat[k]:.3g} > {bound.flat[k]:.3g})\n{graph!r}")


def _largest(arrays: list) -> float:
    return max([float(np.max(np.abs(a))) for a in arrays if a is not None and np.size(a)] + [0.0])


def check_graph_float64(g: Graph) -> None:
    loss, grads, probe, _ = run_chainrule(g)
    ag_loss, ag_grads = run_autograd(g)
    floor = max(_largest(ag_grads), autograd_node_scale(g))
    if HAVE_TORCH:
        th_loss, th_grads, th_probe, th_largest = run_torch(g)
        floor = max(floor, th_largest)
    assert_close(loss, ag_loss, RTOL64, "loss vs autograd", g)
    for (name, _), got, want in zip(g.leaves, grads, ag_grads, strict=True):
        assert got is not None, f"{name}.grad is None after backward\n{g!r}"
        assert got.dtype == np.float64, f"{name}.grad has dtype {got.dtype}\n{g!r}"
        assert_close(got, want, RTOL64, f"d loss / d {name} vs autograd", g, floor)
    if HAVE_TORCH:
        assert_close(loss, th_loss, RTOL64, "loss vs torch", g)
        for (name, _), got, want in zip(g.leaves, grads, th_grads, strict=True):
            assert_close(got, want, RTOL64, f"d loss / d {name} vs torch", g, floor)
        if g.probe is not None:
            assert_close(probe, th_probe, RTOL64, f"cr.grad(loss, [{g.probe}]) vs torch.autograd.grad",
                         g, floor)


# --- the tests ---------------------------------------------------------------------------------

# The primitive each core table entry exercises, where the entry's name differs.
PRIMITIVE_OF = {"radd": "add", "rsub": "sub", "rmul": "mul", "rdiv": "div", "divs": "div",
                "square": "pow", "cube": "pow", "pow_half": "pow", "pow_neg": "pow", "rpow": "pow",
                "abs_fn": "abs", "exp_method": "exp", "matmul_fn": "matmul"}


def test_every_core_primitive_is_drawn_or_excluded_with_a_reason():
    core = {p.name for p in vars(ops).values() if isinstance(p, ops.Primitive)}
    drawn = {PRIMITIVE_OF.get(op.name, op.name) for op in CORE_OPS}
    missing = sorted(core - drawn - set(NOT_DRAWN))
    assert not missing, f"primitives of chainrule.ops with no entry in the differential table: {missing}"


def test_every_functional_activation_and_loss_has_a_table_entry():
    if F is None:
        pytest.skip("chainrule.functional is not importable yet")
    names = getattr(F, "__all__", None)
    if names is None:
        pytest.skip("chainrule.functional has no __all__ to enumerate")
    covered = {op.requires for op in FUNCTIONAL_OPS}
    # not elementwise on one tensor of any shape: tested on their own below / elsewhere
    special = {"dropout", "get_activation", "get_loss"}  # random, or look-ups, not math
    # the same primitives as conv1d / avg_pool1d in more dimensions, and max pooling (a tie
    # splits autograd's gradient but goes to the first maximum in PyTorch and chainrule):
    # each against autograd and torch in test_conv.py and test_pooling.py
    special |= {"conv2d", "conv3d", "max_pool1d", "max_pool2d", "avg_pool2d"}
    missing = sorted(n for n in names if callable(getattr(F, n)) and not n[0].isupper()
                     and n not in covered and n not in special and n not in {"formula", "FORMULAS"})
    assert not missing, f"functional names with no differential entry: {missing}"


@_settings(250)
@given(graphs(available_ops(CORE_OPS)))
def test_random_core_graphs_match_autograd_and_torch(graph):
    check_graph_float64(graph)


@_settings(150)
@given(graphs(available_ops(CORE_OPS + FUNCTIONAL_OPS), max_depth=30))
def test_random_graphs_with_activations_and_losses_match_oracles(graph):
    if F is None:
        pytest.skip("chainrule.functional is not importable yet")
    check_graph_float64(graph)


# --- grad of grad: the same random graphs, differentiated twice ----------------------------------

def _directions(g: Graph) -> list[np.ndarray]:
    rng = np.random.default_rng(len(g.nodes) + 7)
    return [rng.normal(size=v.shape) for _, v in g.leaves]


def run_chainrule_hvp(g: Graph, vs: list[np.ndarray]) -> list[np.ndarray]:
    """d/dx of (d loss/dx . v): the gradient recorded with create_graph, then differentiated."""
    env: dict[str, Any] = {"cr": cr, "np": np, "F": F}
    exec(g.program("cr"), env)
    leaves = [env[name] for name, _ in g.leaves]
    gs = cr.grad(env["loss"], leaves, create_graph=True, allow_unused=True)
    terms = [(gi * v).sum() for gi, v in zip(gs, vs, strict=False) if gi is not None and gi.requires_grad]
    if not terms:
        return [np.zeros(v.shape) for v in vs]
    total = terms[0]
    for t in terms[1:]:
        total = total + t
    found = cr.grad(total, leaves, allow_unused=True)
    return [np.zeros(v.shape) if h is None else h.data for h, v in zip(found, vs, strict=False)]


def run_autograd_hvp(g: Graph, vs: list[np.ndarray]) -> list[np.ndarray]:
    names = [n for n, _ in g.leaves]
    body = g.program("ag").replace("\n", "\n    ")
    env: dict[str, Any] = {"anp": anp, "np": np, "asp": asp}
    exec(f"def f({', '.join(names)}):\n    {body}\n    return loss\n", env)
    f = env["f"]
    values = tuple(v for _, v in g.leaves)

    def directional(*xs):
        return sum(anp.sum(autograd.grad(f, i)(*xs) * v) for i, v in enumerate(vs))

    import warnings
    with warnings.catch_warnings():  # a linear graph: "output seems independent of input"
        warnings.simplefilter("ignore", UserWarning)
        return [np.asarray(autograd.grad(directional, i)(*values)) for i in range(len(values))]


def run_torch_hvp(g: Graph, vs: list[np.ndarray]) -> list[np.ndarray]:
    env: dict[str, Any] = {"torch": torch, "TF": TF, "np": np}
    exec(g.program("th"), env)
    leaves = [env[name] for name, _ in g.leaves]
    gs = torch.autograd.grad(env["loss"], leaves, create_graph=True, allow_unused=True)
    terms = [(gi * torch.from_numpy(v)).sum() for gi, v in zip(gs, vs, strict=False)
             if gi is not None and gi.requires_grad]
    if not terms:
        return [np.zeros(v.shape) for v in vs]
    found = torch.autograd.grad(sum(terms), leaves, allow_unused=True)
    return [np.zeros(v.shape) if h is None else h.numpy(force=True) for h, v in zip(found, vs, strict=False)]


def check_graph_hvp(g: Graph) -> None:
    vs = _directions(g)
    ours = run_chainrule_hvp(g, vs)
    oracles = [("autograd", run_autograd_hvp(g, vs))]
    # torch has no double backward of multi_margin_loss ("not implemented")
    if HAVE_TORCH and "multi_margin_loss" not in g.ops_used:
        oracles.append(("torch", run_torch_hvp(g, vs)))
    # Terms that cancel exactly (x / x) leave rounding residue of the size of the terms, which
    # are O(1) here (leaves are standard normal): 1.0 bounds them below.
    floor = max([_largest(want) for _, want in oracles] + [1.0])
    for oracle, wants in oracles:
        for (name, _), got, want in zip(g.leaves, ours, wants, strict=True):
            assert_close(got, want, 1e-9, f"d/d{name} (d loss/dx . v) vs {oracle}", g, floor)


@_settings(60)
@given(graphs(available_ops(CORE_OPS), max_depth=20))
def test_random_grad_of_grad_core_graphs_match_oracles(graph):
    check_graph_hvp(graph)


@_settings(40)
@given(graphs(available_ops(CORE_OPS + FUNCTIONAL_OPS), max_depth=12))
def test_random_grad_of_grad_graphs_match_oracles(graph):
    if F is None:
        pytest.skip("chainrule.functional is not importable yet")
    check_graph_hvp(graph)


@pytest.mark.parametrize("op", available_ops(FUNCTIONAL_OPS), ids=lambda op: op.name)
def test_each_functional_entry_alone(op):
    """Each activation/loss on its own small graph: a failure names the op directly."""
    @settings(_settings(15), max_examples=max(15, (N_GRAPHS or 0) // 10))
    @given(graphs([op], max_depth=2))
    def run(graph):
        check_graph_float64(graph)
    run()


# float32: same graphs, cast, with a tolerance from float32's unit roundoff.
U32 = float(np.finfo(np.float32).eps) / 2


def _float64_twin(g: Graph) -> Graph:
    return Graph(np.dtype(np.float64), [(n, v.astype(np.float64)) for n, v in g.leaves], g.nodes,
                 [(v, w.astype(np.float64)) for v, w in g.outputs], g.probe, g.ops_used, g.kinked)


def check_graph_float32(graph: Graph) -> bool:
    """float32 stays float32, and agrees with float64 within float32's own rounding.

    Returns False (compared nothing) when the graph is kinked at float32 resolution: a
    perturbation of one unit roundoff moves a gradient by far more than rounding could, so
    float32 may legitimately take the other branch of a max, abs or clip.
    """
    loss32, grads32, _, env = run_chainrule(graph)
    for node in graph.nodes:
        t = env[node.var]
        assert t.dtype == np.float32, f"{node.var} = {node.code['cr']} has dtype {t.dtype}\n{graph!r}"
    for (name, _), g32 in zip(graph.leaves, grads32, strict=True):
        assert g32.dtype == np.float32, f"{name}.grad has dtype {g32.dtype}\n{graph!r}"

    # Reference: the same float32 inputs, differentiated in float64 by autograd. Each of the
    # d operations rounds its value and its gradient (relative error <= u each), so a
    # well-conditioned graph is off by at most ~2*d*u relative; ill-conditioning amplifies
    # input-sized errors, which we measure: rerun float64 with every input nudged by u.
    twin = _float64_twin(graph)
    ref_loss, ref = run_autograd(twin)
    rng = np.random.default_rng(0)
    nudged = Graph(twin.dtype, [(n, v * (1 + U32 * rng.choice([-1.0, 1.0], size=v.shape)))
                                for n, v in twin.leaves], twin.nodes, twin.outputs, None,
                   twin.ops_used, twin.kinked)
    nudged_loss, nudged_grads = run_autograd(nudged)
    depth = len(graph.nodes) + 1
    slack = 4 * depth  # 2*d*u, doubled for the nudge being one sample of the sensitivity
    for want, moved in zip(ref, nudged_grads, strict=True):
        scale = _largest([want])
        if graph.kinked and np.any(np.abs(moved - want) > 1e3 * U32 * (np.abs(want) + scale)):
            return False
    # as in float64: cancellation is judged against the largest gradient of any node (a leaf's
    # exact 0 can be the float32 difference of two O(1) contributions); torch's float32 run
    # gives that scale
    floor = max(_largest(ref), autograd_node_scale(twin))
    if HAVE_TORCH:
        floor = max(floor, run_torch(graph)[3])
    for (name, _), g32, want, moved in zip(graph.leaves, grads32, ref, nudged_grads, strict=True):
        scale = _largest([want])
        tol = slack * (U32 * (np.abs(want) + scale + floor) + np.abs(moved - want))
        err = np.abs(g32.astype(np.float64) - want)
        if not np.all(err <= tol):
            k = int(np.argmax(err - tol))
            raise AssertionError(
                f"float32 d loss / d {name}: element {k} is {float(g32.flat[k])!r}, float64 "
                f"{float(want.flat[k])!r}; |diff| {err.flat[k]:.3g} > tolerance {tol.flat[k]:.3g} "
                f"(depth {depth})\n{graph!r}")
    loss_tol = slack * (U32 * abs(ref_loss) + abs(nudged_loss - ref_loss)) + slack * U32 * _largest(
        [w for _, w in graph.outputs])
    assert abs(loss32 - ref_loss) <= loss_tol, f"float32 loss {loss32!r}, float64 {ref_loss!r}\n{graph!r}"
    return True


@_settings(120)
@given(graphs(available_ops(CORE_OPS + FUNCTIONAL_OPS), dtype=np.float32, max_depth=20))
def test_random_float32_graphs_stay_float32_and_within_float32_precision(graph):
    compared = check_graph_float32(graph)
    event("float32 graph compared" if compared else "float32 graph kinked at u: dtype checked only")


def test_generator_reaches_depth_reuse_and_broadcasting():
    """The generator is not vacuous: graphs reach depth 50, reuse nodes, and broadcast."""
    seen = {"deep": False, "reuse": False, "broadcast": False, "ops": set()}

    @_settings(150)
    @given(graphs(available_ops(CORE_OPS)))
    def collect(graph):
        seen["ops"].update(graph.ops_used)
        seen["deep"] |= len(graph.ops_used) >= 40
        seen["reuse"] |= any(n > 1 for n in graph.uses.values())
        shapes = {tuple(v.shape) for _, v in graph.leaves}
        seen["broadcast"] |= len(shapes) > 1
    collect()
    assert seen["deep"] and seen["reuse"] and seen["broadcast"]
    never = {op.name for op in CORE_OPS} - seen["ops"]
    assert not never, f"operations the generator never drew in 150 graphs: {sorted(never)}"


def test_a_disagreement_is_reported_with_the_program_that_reproduces_it(monkeypatch):
    """Plant a wrong VJP and check the failure shows a runnable, shrunk program naming it."""
    wrong = ops.Primitive("exp", np.exp, (lambda g, ans, a: g * ans * 1.0001,))
    monkeypatch.setattr(ops.exp, "vjps", wrong.vjps)

    @settings(max_examples=200, deadline=None, derandomize=True, database=None,
              suppress_health_check=list(HealthCheck))
    @given(graphs([op for op in CORE_OPS if op.name in ("exp", "add", "mul", "sum")], max_depth=8))
    def run(graph):
        check_graph_float64(graph)

    with pytest.raises(AssertionError) as info:
        run()
    message = str(info.value)
    assert "cr.exp(" in message and "loss.backward()" in message
    program = message[message.index("import numpy as np"):message.index("loss.backward()")]
    # shrunk: the reproducing program is a handful of lines, not a 50-op graph
    assert program.count("\n") <= 8, program


@pytest.mark.skipif(F is None or not hasattr(F, "cosine_similarity"), reason="needs F.cosine_similarity")
def test_cosine_similarity_with_broadcasting_matches_torch():
    if not HAVE_TORCH:
        pytest.skip("torch is not installed: it is this test's oracle")
    a = np.array([-0.1321048632913019, 0.6404226504432821])
    b = np.array([0.1257302210933933])  # broadcasts to (2,), as torch.cosine_similarity allows
    x, y = cr.tensor(a, requires_grad=True), cr.tensor(b, requires_grad=True)
    F.cosine_similarity(x, y, axis=0).backward()
    tx = torch.tensor(a, requires_grad=True)
    ty = torch.tensor(b, requires_grad=True)
    want = TF.cosine_similarity(tx, ty, dim=0)
    want.backward()
    assert np.isclose(F.cosine_similarity(a, b, axis=0).item(), want.item(), rtol=1e-12)
    np.testing.assert_allclose(x.grad, tx.grad.numpy(), rtol=1e-10, atol=1e-14)
    np.testing.assert_allclose(y.grad, ty.grad.numpy(), rtol=1e-10, atol=1e-14)
    # an axis that exists only in the broadcast shape (torch accepts dim=1 here)
    u, v = np.ones((3, 1)), np.arange(1.0, 5.0)
    got = F.cosine_similarity(u, v, axis=1).data
    np.testing.assert_allclose(got, TF.cosine_similarity(torch.tensor(u), torch.tensor(v), dim=1).numpy())


# --- NumPy's operations (issue 12) ---------------------------------------------------------------

NUMPY_PRIMITIVE_OF = {"einsum_sum": "einsum", "var": "mean", "std": "sqrt"}


def test_every_numpy_primitive_is_drawn_or_excluded_with_a_reason():
    from chainrule import ops_elementwise, ops_linalg, ops_reduce
    new = {p.name for m in (ops_elementwise, ops_reduce, ops_linalg)
           for p in vars(m).values() if isinstance(p, ops.Primitive)}
    drawn = {NUMPY_PRIMITIVE_OF.get(op.name, op.name) for op in NUMPY_OPS}
    missing = sorted(new - drawn - set(NUMPY_NOT_DRAWN))
    assert not missing, f"NumPy primitives with no entry in the differential table: {missing}"


@_settings(150)
@given(graphs(available_ops(CORE_OPS + NUMPY_OPS), max_depth=30))
def test_random_graphs_with_numpy_operations_match_oracles(graph):
    check_graph_float64(graph)


@pytest.mark.parametrize("op", NUMPY_OPS, ids=lambda op: op.name)
def test_each_numpy_entry_alone(op):
    """Each NumPy operation on its own small graph: a failure names the op directly."""
    @settings(_settings(10), max_examples=max(10, (N_GRAPHS or 0) // 10))
    @given(graphs([op], max_depth=2))
    def run(graph):
        check_graph_float64(graph)
    run()


@_settings(60)
@given(graphs(available_ops(CORE_OPS + NUMPY_OPS), dtype=np.float32, max_depth=20))
def test_random_float32_graphs_with_numpy_operations(graph):
    compared = check_graph_float32(graph)
    event("float32 graph compared" if compared else "float32 graph kinked at u: dtype checked only")
