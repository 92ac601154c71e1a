"""The closed loop: what ``chainrule derive NAME --steps`` writes, ``chainrule check`` accepts.

For every registered function, the derivation in Markdown (and in LaTeX, which ``check`` reads
as a ``.tex`` document) is written by the CLI and graded by the CLI: no step may be called
wrong. A wrong verdict here is a misreading by the checker or an ambiguous formula printed by
``derive`` (both were found this way: ``\\frac{d}{dx}`` of a function read as 0, the chain
rule's σ(f(w)) read as a product, ``\\frac{\\partial}{\\partial x_j} x_i \\sum_k ...``).
"""
from __future__ import annotations

import pytest

pytest.importorskip("sympy", reason="the symbolic extra (SymPy) is not installed")
pytest.importorskip("latex2sympy2_extended",
                    reason="the symbolic extra (latex2sympy2_extended) is not installed")

import chainrule.cli as cli  # noqa: E402
from chainrule.functional import FORMULAS  # noqa: E402
from chainrule.symbolic.derivation_check import NOT_CHECKED, WRONG, check_derivation  # noqa: E402

# Every registered function: the elementwise ones (~1-10 s each) and the vector ones (softmax,
# cross-entropy over m samples, cosine similarity, the margin losses: 5-20 s each), whose
# documents write what their final forms name (s_j, ŷ_uv, |y|, θ) and what they assume
# (Σ_v y_iv = 1) in lines check reads.
NAMES = [name for name, f in FORMULAS.items() if f.sympy]
VECTOR = [name for name in NAMES if "[" in FORMULAS[name].sympy[0]]


def test_the_loop_covers_the_vector_functions():
    assert {"softmax", "log_softmax", "cross_entropy", "cosine_similarity", "multi_margin_loss"} \
        <= set(VECTOR)


@pytest.mark.parametrize("fmt,suffix", [("markdown", "md"), ("latex", "tex")])
@pytest.mark.parametrize("name", NAMES)
def test_check_accepts_what_derive_writes(tmp_path, capsys, name, fmt, suffix):
    path = tmp_path / f"{name}.{suffix}"
    assert cli.main(["derive", name, "--steps", "--format", fmt, "-o", str(path)]) == 0
    capsys.readouterr()
    report = check_derivation(path)
    wrong = [r.text() for r in report.records if r.verdict == WRONG]
    assert not wrong, "\n".join(wrong)
    unread = [r.text() for r in report.records if r.verdict == NOT_CHECKED]  # every step is read
    assert not unread, "\n".join(unread)
    assert len(report.steps) >= 2  # the document was read, not skipped
    assert cli.main(["check", str(path)]) == 0
