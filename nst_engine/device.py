"""Choosing the device and the fastest safe precision for the convolutions."""

from __future__ import annotations

import contextlib
import functools
import time
from collections.abc import Iterator
from dataclasses import dataclass

import torch

from .errors import SettingsError


def select_device(name: str = "auto") -> torch.device:
    """``auto`` picks CUDA, then Apple's MPS, then the CPU; any torch device name works."""
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(name)
    except RuntimeError as error:
        raise SettingsError("device", f"unknown device '{name}' (auto, cpu, cuda, mps)") from error
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SettingsError("device", "CUDA was asked for but this torch build sees no GPU")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise SettingsError("device", "MPS was asked for but is not available here")
    return device


#: bf16 convolutions are used on a CPU only when they take less than this share of fp32's time.
BF16_SPEEDUP = 0.8
BF16_FLAGS = frozenset({"avx512_bf16", "amx_bf16"})


@dataclass(frozen=True)
class Bf16Trial:
    """What decided bf16 on this CPU: its bf16 instructions and, where it has them, the time
    of one convolution in each precision (None: not timed, the instructions are missing)."""

    flags: frozenset[str]
    fp32_seconds: float | None = None
    bf16_seconds: float | None = None

    @property
    def faster(self) -> bool:
        return (self.fp32_seconds is not None and self.bf16_seconds is not None
                and self.bf16_seconds < BF16_SPEEDUP * self.fp32_seconds)


@functools.cache
def cpu_bf16_trial() -> Bf16Trial:
    """Whether bfloat16 convolutions measurably beat float32 on this CPU, and the evidence.

    The CPU flags alone do not tell: with AMX, bf16 runs several times faster; with only
    AVX-512 BF16 it was measured *slower* than fp32 on some virtual machines; without
    either it is emulated. So where the flags allow it, a short timing decides (about a
    second or two, once per process)."""
    flags = frozenset(_cpu_flags() & BF16_FLAGS)
    if not flags:
        return Bf16Trial(flags)
    return Bf16Trial(flags, _conv_seconds(torch.float32), _conv_seconds(torch.bfloat16))


def cpu_bf16_is_faster() -> bool:
    """True when bfloat16 convolutions measurably beat float32 on this CPU."""
    return cpu_bf16_trial().faster


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="ignore") as cpuinfo:
            return set(next((line for line in cpuinfo if line.startswith("flags")), "").split())
    except OSError:
        return set()


def _conv_seconds(dtype: torch.dtype, repeats: int = 2) -> float:
    """Best time of a VGG-like convolution's forward and input-gradient pass."""
    conv = torch.nn.Conv2d(128, 128, 3, padding=1).requires_grad_(False)
    conv = conv.to(memory_format=torch.channels_last)
    image = torch.rand(1, 128, 64, 64).contiguous(memory_format=torch.channels_last)
    image.requires_grad_(True)
    best = float("inf")
    for _ in range(repeats + 1):  # the first call builds the kernels
        start = time.perf_counter()
        with autocast(torch.device("cpu"), dtype):
            conv(image).float().sum().backward()
        best = min(best, time.perf_counter() - start)
    return best


def resolve_precision(device: torch.device, requested: str = "auto") -> torch.dtype:
    """The dtype the convolutions run in; losses and Gram matrices always stay float32."""
    if requested == "fp32":
        return torch.float32
    if requested == "bf16":
        return torch.bfloat16
    if requested == "fp16":
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    if device.type == "cpu" and cpu_bf16_is_faster():
        return torch.bfloat16
    return torch.float32


@contextlib.contextmanager
def autocast(device: torch.device, dtype: torch.dtype) -> Iterator[None]:
    """Run the enclosed convolutions in ``dtype`` (a no-op for float32)."""
    if dtype == torch.float32:
        yield
        return
    with torch.autocast(device_type=device.type, dtype=dtype):
        yield


def explain_precision(device: torch.device, requested: str = "auto") -> str:
    """Which precision ``requested`` gives on ``device``, and why: for the benchmarks, which
    must say what they measured, since the choice differs from machine to machine."""
    name = precision_name(resolve_precision(device, requested))
    if requested != "auto":
        return f"{name} (asked for)"
    if device.type == "cuda":
        return f"{name} (auto: this GPU {'supports' if name == 'bf16' else 'lacks'} bf16)"
    if device.type != "cpu":
        return f"{name} (auto, on {device.type})"
    trial = cpu_bf16_trial()
    if trial.fp32_seconds is None or trial.bf16_seconds is None:
        return f"{name} (auto: this CPU has no bf16 instructions, {'/'.join(sorted(BF16_FLAGS))})"
    ratio = trial.bf16_seconds / trial.fp32_seconds
    return (f"{name} (auto: this CPU has {', '.join(sorted(trial.flags))}, and a timed "
            f"convolution took {ratio:.2f}x fp32's time in bf16; bf16 is used below "
            f"{BF16_SPEEDUP:g}x)")


def precision_name(dtype: torch.dtype) -> str:
    return {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}[dtype]
