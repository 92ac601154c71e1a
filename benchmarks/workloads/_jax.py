"""JAX as its users write it: ``jax.jit`` of ``jax.value_and_grad``, float64 enabled.

Optional: when JAX is not installed, importing this raises ImportError and the harness lists
JAX as not installed. JAX dispatches asynchronously, so every step blocks until its results
exist; otherwise it would time the dispatch alone.
"""
from __future__ import annotations

import jax

jax.config.update("jax_enable_x64", True)  # the float64 rows must be float64, as for the others
