"""The precision ``auto`` picks, and the reason the benchmarks print beside their figures."""

from __future__ import annotations

import pytest
import torch

from nst_engine import device
from nst_engine.device import Bf16Trial, explain_precision, resolve_precision

CPU = torch.device("cpu")


@pytest.fixture
def trial(monkeypatch):
    """Replace this CPU's bf16 trial with a chosen one."""

    def use(result: Bf16Trial) -> None:
        monkeypatch.setattr(device, "cpu_bf16_trial", lambda: result)

    return use


def test_a_cpu_without_bf16_instructions_runs_fp32_and_says_so(trial):
    trial(Bf16Trial(frozenset()))
    assert resolve_precision(CPU) == torch.float32
    assert explain_precision(CPU) == ("fp32 (auto: this CPU has no bf16 instructions, "
                                      "amx_bf16/avx512_bf16)")


def test_bf16_is_picked_only_when_the_timed_convolution_is_clearly_faster(trial):
    trial(Bf16Trial(frozenset({"avx512_bf16"}), fp32_seconds=1.0, bf16_seconds=0.5))
    assert resolve_precision(CPU) == torch.bfloat16
    assert explain_precision(CPU).startswith("bf16 (auto: this CPU has avx512_bf16, and a "
                                             "timed convolution took 0.50x fp32's time")
    trial(Bf16Trial(frozenset({"avx512_bf16"}), fp32_seconds=1.0, bf16_seconds=0.9))
    assert resolve_precision(CPU) == torch.float32  # faster, but not by enough
    assert explain_precision(CPU).startswith("fp32 (auto: this CPU has avx512_bf16, and a "
                                             "timed convolution took 0.90x")


def test_a_precision_asked_for_is_taken_as_it_is(trial):
    trial(Bf16Trial(frozenset()))
    assert explain_precision(CPU, "bf16") == "bf16 (asked for)"
    assert resolve_precision(CPU, "bf16") == torch.bfloat16


def test_the_real_trial_on_this_cpu_is_consistent():
    result = device.cpu_bf16_trial()
    assert (result.fp32_seconds is None) == (not result.flags)
    assert device.cpu_bf16_is_faster() == result.faster
    assert explain_precision(CPU).split()[0] in ("fp32", "bf16")
