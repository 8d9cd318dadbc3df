"""Opt-in speed settings of the synthetic trainers, each a spec field
so that every CSV row names the numerics that produced it.

- ``fast`` (bool): the fused 2N x 2N loss (:mod:`aninfonce.losses`) and fused
  Adam. Same maths, float rounding differs.
- ``matmul``: ``"ieee"`` (default) or ``"reduced"``: the encoder's matrix
  products (forward and backward) take bf16-rounded inputs and accumulate in
  float32 -- oneDNN's bf16 math mode on CPUs with AMX / AVX512-BF16, TF32 on
  CUDA. Activations, the loss, Lambda^, Adam and every evaluation stay float32
  and IEEE: only the encoder's products are rounded (to about 3 significant
  digits per input). A numerics change, labelled in the ``matmul`` column.
  Measured on the quick profile (benchmarks/compare_presets.py): R^2 and the
  fig2 claim verdicts move no more than under ``fast`` (float rounding
  alone), but the MCC of fig2-linear, which must resolve small differences
  between dims, fell from 0.823 (3 seeds, 0.81-0.83) to 0.760 (0.68-0.88):
  use it for R^2-type results, not for fine axis alignment.
- ``compile``: ``"off"`` (default), ``"on"`` (``torch.compile`` of the
  encoder) or ``"cudagraphs"`` (``mode="reduce-overhead"``: CUDA graphs, for
  a GPU kept idle by kernel launches of small models).

The defaults leave torch's global state and every stored result untouched.
``python reproduce.py --speed PRESET`` applies one of :data:`PRESETS` to
every spec that has these fields (``RunSpec.SPEED_FIELDS``) and keeps the
results and figures apart, under ``results/speed-PRESET/`` and
``figures/speed-PRESET/``, so two numerics never mix in one figure.
"""

from __future__ import annotations

import contextlib
import dataclasses
from typing import Iterator, TypeVar

import torch
import torch.nn.functional as F

from .errors import BadInput

# the presets and the fields they may set are spec data (aninfonce.specs, no torch)
from .specs import COMPILE, MATMUL, PRESETS, check  # noqa: E402,F401

S = TypeVar("S")


def apply(spec: S, preset: str) -> S:
    """``spec`` with the preset's settings on the fields it has (``SPEED_FIELDS``)."""
    if preset not in PRESETS:
        raise BadInput(f"unknown speed preset {preset!r}; choose one of {', '.join(PRESETS)}")
    fields = getattr(type(spec), "SPEED_FIELDS", ())
    changes = {k: v for k, v in PRESETS[preset].items() if k in fields}
    return dataclasses.replace(spec, **changes) if changes else spec


def use_fused_adam(opt: torch.optim.Optimizer) -> None:
    """Switch Adam to its fused kernel: one pass per parameter instead of a
    dozen elementwise ops (on CPU about 10x faster, a fifth of the paper
    encoder's step). Same update rule, equal up to float rounding."""
    params = [p for g in opt.param_groups for p in g["params"]]
    if isinstance(opt, torch.optim.Adam) and params and all(p.device.type in ("cpu", "cuda") for p in params):
        for g in opt.param_groups:
            g["fused"], g["foreach"] = True, False


def cpu_has_bf16() -> bool:
    """Whether oneDNN can run float32 products with bf16 inputs on this CPU."""
    supported = getattr(torch.ops.mkldnn, "_is_mkldnn_bf16_supported", None)
    return bool(torch.backends.mkldnn.is_available() and supported is not None and supported())


@contextlib.contextmanager
def reduced_matmul(device: torch.device) -> Iterator[None]:
    """float32 matrix products on ``device`` with bf16 (CPU) / TF32 (CUDA)
    inputs inside the block; the previous setting is restored after it."""
    if device.type == "cpu":
        if not cpu_has_bf16():
            raise BadInput("matmul='reduced' needs a CPU with bf16 matrix support (AVX512-BF16 or AMX); "
                             "this one has none, so the products would silently stay float32")
        backend, mode = torch.backends.mkldnn.matmul, "bf16"
    elif device.type == "cuda":
        backend, mode = torch.backends.cuda.matmul, "tf32"
    else:
        raise BadInput(f"matmul='reduced' is defined for cpu and cuda, not {device.type}")
    before = backend.fp32_precision
    backend.fp32_precision = mode
    try:
        yield
    finally:
        backend.fp32_precision = before


class _ReducedLinear(torch.autograd.Function):
    """``x W^T + b`` whose three products (forward, input and weight
    gradients) run under :func:`reduced_matmul`; nothing outside them does."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(x, w)
        with reduced_matmul(x.device):
            return torch.addmm(b, x, w.t())

    @staticmethod
    def backward(ctx, g: torch.Tensor):
        x, w = ctx.saved_tensors
        gx = gw = gb = None
        with reduced_matmul(g.device):
            if ctx.needs_input_grad[0]:
                gx = g.mm(w)
            if ctx.needs_input_grad[1]:
                gw = g.t().mm(x)
        if ctx.needs_input_grad[2]:
            gb = g.sum(0)
        return gx, gw, gb


def mlp_forward(layers: torch.nn.Sequential, x: torch.Tensor, matmul: str) -> torch.Tensor:
    """Run an MLP of Linear / LeakyReLU layers with the given matmul precision."""
    if matmul == "ieee":
        return layers(x)
    for layer in layers:
        if isinstance(layer, torch.nn.Linear):
            x = _ReducedLinear.apply(x, layer.weight, layer.bias)
        elif isinstance(layer, torch.nn.LeakyReLU):
            x = F.leaky_relu(x, layer.negative_slope, inplace=layer.inplace)
        else:
            raise TypeError(f"matmul='reduced' supports Linear and LeakyReLU layers, not {type(layer).__name__}")
    return x


def compiled(module: torch.nn.Module, mode: str) -> torch.nn.Module:
    """``module`` itself for ``"off"``, else its ``torch.compile`` (the
    parameters stay the module's own, so optimisers and checkpoints see no
    difference)."""
    if mode == "off":
        return module
    return torch.compile(module, mode="reduce-overhead" if mode == "cudagraphs" else None)
