"""Floating-point work of a Keras model, counted from its layers, and the machine's matmul peak.

A training step costs about three forward passes (forward, and the two backward products of
every layer); the forward pass is counted exactly for the layers that dominate: Conv2D,
Conv2DTranspose and Dense (2 FLOP per multiply-add). Normalisation, activations and pooling
are a few FLOP per value and left out, so the count is a slight underestimate.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np


def forward_flops(model: Any) -> int:
    """FLOP of one example's forward pass through ``model`` (nested sub-models included)."""
    total = 0
    for layer, outer in _layers(model):
        kind = type(layer).__name__
        if kind in ("Conv2D", "Conv2DTranspose"):
            kh, kw = layer.kernel_size
            c_in, c_out = int(layer.kernel.shape[-2 if kind == "Conv2D" else -1]), layer.filters
            if outer is not None:  # inside a custom layer (spatial attention): same-size map
                _, h, w, _ = outer.output.shape
                total += 2 * h * w * c_out * kh * kw * c_in
            elif kind == "Conv2D":
                _, h, w, _ = layer.output.shape  # every output value: kh·kw·c_in multiply-adds
                total += 2 * h * w * c_out * kh * kw * c_in
            else:
                _, h, w, _ = layer.input.shape  # every input value is spread over kh·kw·c_out
                total += 2 * h * w * c_in * kh * kw * c_out
        elif kind == "Dense":
            total += 2 * int(layer.kernel.shape[0]) * int(layer.kernel.shape[1])
    return int(total)


def training_flops_per_example(model: Any) -> int:
    """About three forward passes: the forward one, and the two products of backpropagation."""
    return 3 * forward_flops(model)


def _layers(model: Any) -> list[tuple[Any, Any]]:
    """(layer, the custom layer it sits in or None) for every layer, nested models opened."""
    out = []
    for layer in model.layers:
        if hasattr(layer, "layers") and layer.layers:  # a nested model (the VAE's encoder)
            out.extend(_layers(layer))
        else:
            out.append((layer, None))
            for sub in getattr(layer, "_layers", []) or []:  # layers inside a custom layer
                out.append((sub, layer))
    return out


def matmul_peak(threads_note: str, n: int = 1024, seconds: float = 3.0) -> dict[str, float]:
    """Best float32 GFLOP/s of NumPy's matrix multiply (BLAS) over ``seconds`` of repeats."""
    rng = np.random.default_rng(0)
    a = rng.random((n, n), dtype=np.float32)
    b = rng.random((n, n), dtype=np.float32)
    a @ b  # warm up
    best = float("inf")
    deadline = time.perf_counter() + seconds
    runs = 0
    while time.perf_counter() < deadline or runs < 3:
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
        runs += 1
    return {"n": n, "runs": runs, "best_seconds": best, "gflops": 2 * n**3 / best / 1e9,
            "threads": threads_note}  # fmt: skip
