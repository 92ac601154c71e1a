"""Tensor contractions: ``einsum`` (the one primitive behind dot, inner, outer, tensordot and
trace's sum) and ``diagonal``.

einsum's VJP for an operand is another einsum: the output gradient contracted with the other
operands onto the operand's own subscripts. Subscripts the operand alone carries (summed
out in the forward) come back by broadcasting; a subscript repeated within the operand (a
diagonal, ``"ii->i"``) comes back multiplied by an identity matrix. Written in plain NumPy, so
the same VJP runs on Tensors when the backward pass is recorded.
"""
from __future__ import annotations

import string
from collections import Counter
from typing import NamedTuple

import numpy as np

from chainrule.ops import primitive


class Subscripts(NamedTuple):
    """einsum subscripts in explicit form: one letter per axis, ellipses spelled out."""

    inputs: tuple[str, ...]
    output: str
    sizes: dict[str, int]  # letter -> its size (the largest, where size-1 axes broadcast)


def parse_subscripts(subscripts: str, shapes: list[tuple[int, ...]]) -> Subscripts:
    """Check ``subscripts`` against the operands' ``shapes`` and spell them out.

    Follows ``np.einsum``: implicit output (letters used once, in alphabetical order, after
    the ellipsis axes), ``...`` broadcasting from the right. Raises ``ValueError`` naming the
    subscripts and the shapes when they do not fit.
    """
    if not isinstance(subscripts, str):
        raise TypeError(f"einsum: subscripts must be a str such as 'ij,jk->ik', got "
                        f"{type(subscripts).__name__}")
    spec = subscripts.replace(" ", "")
    shown = f"einsum({subscripts!r}) with operands of shapes {', '.join(map(str, shapes))}"
    if "->" in spec:
        lhs, out = spec.split("->", 1)
        if "->" in out:
            raise ValueError(f"{shown}: more than one '->'")
    else:
        lhs, out = spec, None
    terms = lhs.split(",")
    if len(terms) != len(shapes):
        raise ValueError(f"{shown}: the subscripts name {len(terms)} operand(s), "
                         f"{len(shapes)} given")
    for t in terms + ([out] if out is not None else []):
        bad = set(t.replace("...", "")) - set(string.ascii_letters)
        if bad or t.count("...") > 1:
            raise ValueError(f"{shown}: subscripts must be letters with at most one '...' per "
                             f"operand, got {t!r}")
    used = set(spec) & set(string.ascii_letters)
    free = [c for c in string.ascii_letters if c not in used]
    n_ell = max([len(s) - (len(t) - 3) for t, s in zip(terms, shapes, strict=True) if "..." in t], default=0)
    ell = "".join(free[:n_ell])
    explicit = []
    for i, (t, shape) in enumerate(zip(terms, shapes, strict=True)):
        if "..." in t:
            k = len(shape) - (len(t) - 3)
            if k < 0:
                raise ValueError(f"{shown}: operand {i} has {len(shape)} dimension(s), fewer "
                                 f"than the {len(t) - 3} letter(s) of {t!r}")
            t = t.replace("...", ell[n_ell - k:])
        if len(t) != len(shape):
            raise ValueError(f"{shown}: operand {i} has {len(shape)} dimension(s), its "
                             f"subscripts {terms[i]!r} name {len(t)}")
        explicit.append(t)
    counts = Counter("".join(terms).replace(".", ""))
    if out is None:
        output = ell + "".join(sorted(c for c, n in counts.items() if n == 1))
    else:
        if "..." not in out and n_ell and any("..." in t for t in terms):
            raise ValueError(f"{shown}: the output subscripts {out!r} drop the '...' axes")
        output = out.replace("...", ell)
        missing = set(output) - set("".join(explicit))
        if missing or len(set(output)) != len(output):
            raise ValueError(f"{shown}: output subscripts {out!r} must name each input letter "
                             "at most once and no other letter")
    sizes: dict[str, int] = {}
    for i, (t, shape) in enumerate(zip(explicit, shapes, strict=True)):
        for c, n in zip(t, shape, strict=True):
            known = sizes.get(c)
            if known is None or known == 1:
                sizes[c] = n
            elif n not in (1, known):
                raise ValueError(f"{shown}: subscript {c!r} has size {known} in one place and "
                                 f"{n} in operand {i}")
    return Subscripts(tuple(explicit), output, sizes)


def _einsum(subscripts, *operands):
    return np.einsum(subscripts, *operands, optimize=len(operands) > 2)


def _einsum_vjp(i, g, ans, subscripts, *operands):
    spec = parse_subscripts(subscripts, [np.shape(x) for x in operands])
    target = spec.inputs[i]
    shape = np.shape(operands[i])
    unique = "".join(dict.fromkeys(target))  # letters in order of first appearance
    elsewhere = set(spec.output).union(*(t for k, t in enumerate(spec.inputs) if k != i))
    kept = "".join(c for c in unique if c in elsewhere)
    others = [x for k, x in enumerate(operands) if k != i]
    terms = ",".join([spec.output] + [t for k, t in enumerate(spec.inputs) if k != i])
    grad = np.einsum(f"{terms}->{kept}", g, *others, optimize=len(others) > 1)
    # Axes this operand broadcast (size 1 against a larger size elsewhere) sum back to 1.
    first = {c: target.index(c) for c in unique}
    widened = tuple(k for k, c in enumerate(kept) if shape[first[c]] == 1 and grad.shape[k] != 1)
    if widened:
        grad = np.sum(grad, axis=widened, keepdims=True)
    # Letters only this operand carries were summed out: broadcast the gradient over them.
    size_of = {c: shape[first[c]] for c in unique}
    grad = np.reshape(grad, tuple(grad.shape[kept.index(c)] if c in kept else 1 for c in unique))
    grad = np.broadcast_to(grad, tuple(size_of[c] for c in unique))
    # Repeated letters (a diagonal): place the gradient on it, an identity per repeat.
    if len(unique) != len(target):
        grad = np.reshape(grad, tuple(size_of[c] if k == first[c] else 1
                                      for k, c in enumerate(target)))
        for k, c in enumerate(target):
            if k != first[c]:
                eye_shape = [1] * len(target)
                eye_shape[first[c]] = eye_shape[k] = size_of[c]
                grad = grad * np.reshape(np.eye(size_of[c], dtype=np.result_type(g)), eye_shape)
    return grad


einsum = primitive("einsum", _einsum, vjp_argnum=lambda i, g, ans, subscripts, *ops:
                   _einsum_vjp(i - 1, g, ans, subscripts, *ops), latex=r"\operatorname{{einsum}}({0})")


def _diagonal(a, offset=0, axis1=0, axis2=1):
    return np.diagonal(a, offset, axis1, axis2).copy()  # NumPy's is a read-only view


def _diagonal_vjp(g, ans, a, offset=0, axis1=0, axis2=1):
    # g (..., L) goes back to rows r0..r0+L-1 and columns c0..c0+L-1 of each (n, m) matrix:
    # g padded to n rows, times the (n, m) indicator of the diagonal.
    nd = a.ndim
    n, m = a.shape[axis1], a.shape[axis2]
    length = g.shape[-1]
    before = min(max(-offset, 0), n)
    dtype = np.result_type(g)
    lead = tuple(g.shape[:-1])
    rows = np.concatenate([np.zeros(lead + (before,), dtype=dtype), g,
                           np.zeros(lead + (n - before - length,), dtype=dtype)], axis=-1)
    full = np.expand_dims(rows, -1) * np.eye(n, m, k=offset, dtype=dtype)
    return np.moveaxis(full, (-2, -1), (axis1 % nd, axis2 % nd))


diagonal = primitive("diagonal", _diagonal, _diagonal_vjp, latex=r"\operatorname{{diag}} {0}")
