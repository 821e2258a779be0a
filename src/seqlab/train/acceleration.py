"""Mixed precision and compilation: what ``--precision`` and ``--compile`` change, and what they refuse.

Mixed precision (Micikevicius et al. 2018) runs the matrix products of the
forward in 16 bits under ``torch.autocast`` while the weights, their
gradients and the optimizer's moments stay float32 (so checkpoints are
float32). Reductions that lose precision in 16 bits stay float32: autocast
keeps softmax and the losses there, the tasks cast logits to float32 before
their loss, and the Transformer computes positions and their angles in
float32. bfloat16 has float32's exponent range and needs nothing more;
float16 does not, so its loss is multiplied by a dynamic scale before the
backward (``torch.amp.GradScaler``) and the gradients divided by it before
clipping; steps whose gradients overflow are skipped.

``torch.compile`` traces the training forward into fused kernels (Inductor:
C++ on the CPU, Triton on CUDA). Compilation happens on the first call; a
failure there is reported as one line naming the cause.
"""
from __future__ import annotations

import shutil
from contextlib import AbstractContextManager
from typing import Any, Callable

import torch
from torch import nn

from ..errors import SeqlabError

PRECISIONS = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def check_precision(precision: str, device: torch.device) -> None:
    """Refuse a precision the device cannot train in."""
    if precision == "fp16" and device.type != "cuda":
        raise SeqlabError("--precision fp16 needs a CUDA GPU (float16 training needs its gradient scaler); "
                          "on the CPU use --precision bf16 or fp32")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise SeqlabError(f"--precision bf16: {torch.cuda.get_device_name(device)} has no bfloat16 arithmetic; "
                          "use --precision fp16 or fp32")


def autocast(precision: str, device: torch.device) -> AbstractContextManager:
    """The forward's precision: autocast to 16 bits, or nothing for fp32."""
    return torch.autocast(device.type, dtype=PRECISIONS[precision], enabled=precision != "fp32")


def gradient_scaler(precision: str, device: torch.device) -> torch.amp.GradScaler:
    """A dynamic loss scale for fp16; for other precisions a scaler that does nothing (one code path)."""
    return torch.amp.GradScaler(device.type, enabled=precision == "fp16")


def check_compiler(device: torch.device) -> None:
    """Refuse ``--compile true`` where Inductor has no compiler to call: Triton on CUDA, a C++ compiler on the CPU."""
    if device.type == "cuda":
        from torch.utils._triton import has_triton

        if not has_triton():
            raise SeqlabError("--compile true on CUDA needs Triton, which is not installed (pip install triton); "
                              "or train with --compile false")
        return
    from torch._inductor import config as inductor_config

    candidates = inductor_config.cpp.cxx if isinstance(inductor_config.cpp.cxx, (list, tuple)) else (inductor_config.cpp.cxx,)
    if not any(name and shutil.which(name) for name in candidates):
        raise SeqlabError("--compile true on the CPU needs a C++ compiler (g++ or clang++ on the PATH, or CXX), "
                          "which this machine does not have; install one or train with --compile false")


def compile_model(model: nn.Module) -> nn.Module:
    """``torch.compile(model)``; the module itself stays reachable (``unwrap``) and saves the same weights."""
    return torch.compile(model)


def compile_failures() -> tuple[type[BaseException], ...]:
    """The exceptions in which a failing compilation reaches the caller."""
    from torch._dynamo.exc import BackendCompilerFailed
    from torch._inductor.exc import InductorError

    return BackendCompilerFailed, InductorError


def compiled_call(function: Callable[..., Any], *arguments: Any, **keywords: Any) -> Any:
    """Call ``function``, turning a compiler failure into one line that names its cause and the way out."""
    try:
        return function(*arguments, **keywords)
    except compile_failures() as error:
        cause = next((line.strip() for line in str(error).splitlines() if line.strip()), type(error).__name__)
        raise SeqlabError(f"--compile true failed: {cause[:300]}; train with --compile false") from None
