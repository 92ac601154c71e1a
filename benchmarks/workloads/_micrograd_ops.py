"""exp, log and sigmoid for micrograd, written as micrograd writes its own ``relu``.

micrograd (Karpathy's PyPI package) ships +, *, ** and relu only; a user who needs a sigmoid
network or a softmax adds the op the same way, so the benchmark does too.
"""
from __future__ import annotations

import math

from micrograd.engine import Value


def exp(v: Value) -> Value:
    out = Value(math.exp(v.data), (v,), "exp")

    def _backward():
        v.grad += out.data * out.grad
    out._backward = _backward
    return out


def log(v: Value) -> Value:
    out = Value(math.log(v.data), (v,), "log")

    def _backward():
        v.grad += out.grad / v.data
    out._backward = _backward
    return out


def sigmoid(v: Value) -> Value:
    s = 1.0 / (1.0 + math.exp(-v.data))
    out = Value(s, (v,), "sigmoid")

    def _backward():
        v.grad += s * (1.0 - s) * out.grad
    out._backward = _backward
    return out
