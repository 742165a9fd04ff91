"""Which floating-point type a model computes in: fp32, or bf16 where the hardware runs it fast.

"auto" picks bf16 on a GPU and on a CPU with native bf16 matrix units (Intel AMX or AVX512-BF16), fp32
elsewhere. fp32 is the exact mode: the same inputs give the same pixels and the same answers as a plain
fp32 loop. On a CPU without bf16 units, bf16 is emulated and slower than fp32, so asking for it warns.
"""

from __future__ import annotations

import warnings
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # torch is imported when a dtype is asked for, so the CLI checks its input first
    import torch

PRECISIONS = ("auto", "fp32", "bf16", "fp16")
# The names torch uses, accepted too, so "--dtype bfloat16" keeps working.
ALIASES = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}
BF16_CPU_FLAGS = ("amx_bf16", "avx512_bf16")


def cpu_flags(cpuinfo: str | None = None) -> set[str]:
    """The feature flags of this CPU (Linux /proc/cpuinfo); empty where that file does not exist."""
    if cpuinfo is None:
        path = Path("/proc/cpuinfo")
        cpuinfo = path.read_text() if path.is_file() else ""
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return set(line.partition(":")[2].split())
    return set()


@lru_cache(maxsize=1)
def cpu_has_fast_bf16() -> bool:
    """True when this CPU multiplies bf16 matrices natively (AMX or AVX512-BF16)."""
    return any(flag in cpu_flags() for flag in BF16_CPU_FLAGS)


def normalise(precision: str | None) -> str:
    """The canonical name of a precision; None means "auto"."""
    name = ALIASES.get(precision or "auto", precision or "auto")
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r}; choose from {', '.join(PRECISIONS)}")
    return name


def compute_dtype(precision: str | None, device: str | torch.device, fast_bf16: bool | None = None) -> torch.dtype:
    """The dtype to compute in on `device` for the requested precision.

    `fast_bf16` says whether the CPU has bf16 units (detected when None; given in tests).
    """
    import torch

    name = normalise(precision)
    on_cpu = torch.device(device).type == "cpu"
    if fast_bf16 is None:
        fast_bf16 = cpu_has_fast_bf16() if on_cpu else True
    if name == "auto":
        return torch.bfloat16 if not on_cpu or fast_bf16 else torch.float32
    if on_cpu and name == "bf16" and not fast_bf16:
        warnings.warn(
            "this CPU has no bf16 matrix units (AMX / AVX512-BF16): bf16 is emulated and slower than fp32",
            stacklevel=2,
        )
    if on_cpu and name == "fp16":
        raise ValueError("fp16 is for GPUs; on a CPU use fp32 or bf16")
    return {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}[name]
