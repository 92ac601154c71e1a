"""Models in and out of chainrule: PyTorch modules, safetensors files and ONNX graphs.

- ``chainrule.interop.torch``: ``to_torch``, ``from_torch``, ``explain_torch`` (needs PyTorch);
- ``chainrule.interop.safetensors``: model files as safetensors, weights under PyTorch's names
  (needs ``safetensors``, not PyTorch);
- ``chainrule.interop.onnx``: a trained model, its input standardisation included, as an ONNX
  graph (needs ``onnx``).

Each lives in its own module so that one missing optional package never blocks the others;
``to_torch``, ``from_torch`` and ``explain_torch`` are also importable from here (PyTorch is
imported on first use). Install them with ``pip install "chainrule[interop]"`` (all three) or
the ``torch``, ``onnx`` and ``safetensors`` extras one by one.
"""

from __future__ import annotations

from typing import Any

__all__ = ["to_torch", "from_torch", "explain_torch"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from chainrule.interop import torch as _torch

        return getattr(_torch, name)
    raise AttributeError(f"module 'chainrule.interop' has no attribute {name!r}")
