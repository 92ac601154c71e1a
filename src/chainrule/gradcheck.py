"""Check the engine's gradients against central finite differences."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from chainrule.tensor import Tensor, grad


class GradcheckError(AssertionError):
    """The analytic and the numeric gradient disagree; the message says where."""


def _call(fn: Callable[..., Any], args: list[Any]) -> Tensor:
    out = fn(*args)
    if not isinstance(out, Tensor):
        raise TypeError(f"gradcheck: fn must return a Tensor, got {type(out).__name__}")
    return out


def gradcheck(fn: Callable[..., Tensor], *inputs: Any, eps: float = 1e-6, atol: float = 1e-7,
              rtol: float = 1e-5) -> bool:
    """Compare ``fn``'s full Jacobian from backprop with central differences, in float64.

    Differentiates with respect to every Tensor input with ``requires_grad=True``; other
    arguments are passed through unchanged. Returns True, or raises ``GradcheckError`` naming
    the input, the element index, and both values.
    """
    args: list[Any] = []
    wrt: list[int] = []
    for i, x in enumerate(inputs):
        if isinstance(x, Tensor) and x.requires_grad:
            args.append(Tensor(x.data.astype(np.float64), requires_grad=True, name=x.name))
            wrt.append(i)
        else:
            args.append(x)
    if not wrt:
        raise ValueError("gradcheck: no input has requires_grad=True; nothing to check")

    out = _call(fn, args)
    n_out = out.size
    analytic = [np.zeros((n_out, args[i].size)) for i in wrt]
    if out.requires_grad:
        for j in range(n_out):
            seed = np.zeros(out.shape)
            seed.flat[j] = 1.0
            rows = grad(out, [args[i] for i in wrt], seed, retain_graph=True, allow_unused=True)
            for k, r in enumerate(rows):
                if r is not None:
                    analytic[k][j] = r.data.ravel()

    for k, i in enumerate(wrt):
        x = args[i].data
        for e in range(x.size):
            original = x.flat[e]
            x.flat[e] = original + eps
            plus = _call(fn, args).data.astype(np.float64).ravel()
            x.flat[e] = original - eps
            minus = _call(fn, args).data.astype(np.float64).ravel()
            x.flat[e] = original
            numeric = (plus - minus) / (2 * eps)
            a = analytic[k][:, e]
            bad = ~np.isclose(a, numeric, atol=atol, rtol=rtol, equal_nan=True)
            if bad.any():
                j = int(np.argmax(bad))
                label = f"input {i}" + (f" ({inputs[i].name})" if inputs[i].name else "")
                where = np.unravel_index(e, x.shape) if x.ndim else ()
                out_at = np.unravel_index(j, out.shape) if out.ndim else ()
                raise GradcheckError(
                    f"gradient mismatch for {label} at element {tuple(int(v) for v in where)} "
                    f"(output element {tuple(int(v) for v in out_at)}): analytic {float(a[j])!r}, "
                    f"numeric {float(numeric[j])!r} (tolerance atol={atol}, rtol={rtol})")
    return True
