"""Benchmarks: chainrule against hand-written NumPy, PyTorch, HIPS autograd, micrograd and JAX.

Run ``python -m benchmarks.run`` from the repository root (``--quick`` for a short run).
Not part of the test suite; see benchmarks/README.md.
"""
