"""chainrule: reverse-mode automatic differentiation on NumPy, built to be read and checked."""
from chainrule import data, explain, functional, nn, optim  # explain(loss) is callable too
from chainrule.autodiff import detect_anomaly, enable_grad, is_grad_enabled, no_grad
from chainrule.functional.formulas import formula
from chainrule.gradcheck import GradcheckError, gradcheck
from chainrule.numpy_api import *  # noqa: F403 (NumPy's names: sin, var, einsum, ...; see its __all__)
from chainrule.numpy_api import __all__ as _numpy_names
from chainrule.tensor import (
    Tensor,
    abs,
    add,
    arange,
    backward,
    broadcast_arrays,
    broadcast_to,
    clip,
    concatenate,
    divide,
    exp,
    expand_dims,
    from_numpy,
    full,
    grad,
    log,
    matmul,
    max,
    maximum,
    mean,
    min,
    minimum,
    multiply,
    negative,
    ones,
    ones_like,
    power,
    rand,
    randn,
    reshape,
    sqrt,
    squeeze,
    stack,
    subtract,
    sum,
    swapaxes,
    tensor,
    transpose,
    where,
    zeros,
    zeros_like,
)
from chainrule.transforms import hessian, hvp, jacobian, jvp, vhp, vjp

__version__ = "0.1.0"

# Everything registered so far is chainrule's own; a user may replace only their own names.
from chainrule import ops as _ops  # noqa: E402

_ops.BUILTIN_NAMES.update(_ops.PRIMITIVES)

__all__ = [
    "Tensor", "tensor", "from_numpy", "zeros", "ones", "full", "zeros_like", "ones_like",
    "arange", "randn", "rand", "exp", "log", "sqrt", "abs", "maximum", "minimum", "where",
    "clip", "matmul", "sum", "mean", "max", "min", "reshape", "transpose", "swapaxes",
    "expand_dims", "squeeze", "broadcast_to", "concatenate", "stack", "grad", "backward", "no_grad",
    "enable_grad", "is_grad_enabled", "add", "subtract", "multiply", "divide", "negative",
    "power", "broadcast_arrays", "jacobian", "hessian", "hvp", "vhp", "vjp", "jvp",
    "detect_anomaly", "gradcheck", "GradcheckError", "formula", "derive",
    "explain", "functional", "nn", "optim", "data", *_numpy_names,
]


def __getattr__(name: str):
    # chainrule.derive needs SymPy (the symbolic extra): imported on first use, so that
    # `import chainrule` stays NumPy-only
    if name == "derive":
        from chainrule.symbolic import derive

        return derive
    raise AttributeError(f"module 'chainrule' has no attribute {name!r}")
