"""Freed blocks kept in glibc's heap during a run, only where the memory budget has room."""

from __future__ import annotations

import contextlib
import itertools
import resource

import numpy as np
import pytest
from budgets import budget_for_tiles

from nst_engine import allocator, transfer


class FakeGlibc:
    """Records the calls the module makes, in order."""

    def __init__(self) -> None:
        self.calls: list[tuple] = []

    def mallopt(self, parameter: int, value: int) -> int:
        self.calls.append(("mallopt", parameter, value))
        return 1

    def malloc_trim(self, pad: int) -> int:
        self.calls.append(("malloc_trim", pad))
        return 1


@pytest.fixture
def glibc(monkeypatch: pytest.MonkeyPatch) -> FakeGlibc:
    fake = FakeGlibc()
    monkeypatch.setattr(allocator, "_GLIBC", fake)
    return fake


#: What a run leaves behind: glibc's adaptive ceilings, fixed, and the free memory returned.
RESTORED = [("mallopt", allocator._M_MMAP_THRESHOLD, 32 * 2**20),
            ("mallopt", allocator._M_TRIM_THRESHOLD, 64 * 2**20),
            ("malloc_trim", 0)]


def test_kept_blocks_raise_both_thresholds_for_the_run_then_restore_them_and_trim(glibc):
    """Both: with the mmap threshold alone, glibc still trims the heap's top at each free."""
    with allocator.large_blocks_kept(True):
        assert glibc.calls == [("mallopt", allocator._M_MMAP_THRESHOLD, 2**31 - 1),
                               ("mallopt", allocator._M_TRIM_THRESHOLD, 2**31 - 1)]
    assert glibc.calls[2:] == RESTORED


def test_the_thresholds_are_restored_when_the_run_fails(glibc):
    with pytest.raises(RuntimeError), allocator.large_blocks_kept(True):
        raise RuntimeError("cancelled")
    assert glibc.calls[2:] == RESTORED


def test_nothing_changes_when_blocks_are_not_kept(glibc):
    with allocator.large_blocks_kept(False):
        pass
    assert glibc.calls == []


def test_without_glibc_it_does_nothing(monkeypatch):
    monkeypatch.setattr(allocator, "_GLIBC", None)
    allocator.share_main_heap()
    with allocator.large_blocks_kept(True):
        pass


def test_threads_share_the_main_heap(glibc):
    allocator.share_main_heap()
    assert glibc.calls == [("mallopt", allocator._M_ARENA_MAX, 1)]


@pytest.mark.skipif(allocator._GLIBC is None, reason="glibc only")
def test_glibc_takes_the_thresholds():
    """mallopt answers 1 when it accepts a value; a refused one would keep nothing."""
    try:
        assert allocator._GLIBC.mallopt(allocator._M_MMAP_THRESHOLD,
                                        allocator._KEPT_THRESHOLD) == 1
        assert allocator._GLIBC.mallopt(allocator._M_TRIM_THRESHOLD,
                                        allocator._KEPT_THRESHOLD) == 1
    finally:
        allocator._GLIBC.mallopt(allocator._M_MMAP_THRESHOLD, allocator._DEFAULT_THRESHOLD)
        allocator._GLIBC.mallopt(allocator._M_TRIM_THRESHOLD,
                                 allocator._DEFAULT_TRIM_THRESHOLD)


def _faults_per_iteration(engine, style, settings) -> list[int]:
    """Minor page faults (fresh pages) taken by each iteration of a run."""
    counts: list[int] = []

    def count(progress) -> None:
        counts.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt)

    content = np.random.default_rng(0).random((256, 256, 3), dtype=np.float32)
    engine.stylize(content, [style], settings, callback=count)
    return [after - before for before, after in itertools.pairwise(counts)]


@pytest.mark.skipif(allocator._GLIBC is None, reason="glibc only")
def test_a_run_with_blocks_kept_stops_faulting_pages_in(engine, style, tiny):
    """The behaviour itself, on a real run: once its first iterations have sized the heap,
    an iteration's feature maps reuse freed blocks instead of fresh pages. Five iterations
    at 256 px fault in less than four of block 1's feature maps of 4,096 pages (5 to 4,700
    pages measured); with the mmap threshold raised alone, glibc trimmed the heap's top at
    each free and they faulted in 59,000 to 86,000. (A run with neither is no yardstick
    here: after any kept run glibc's thresholds stay at 32 and 64 MiB, above these blocks.)"""
    settings = tiny(size=256, precision="fp32", initial_iterations=8,
                    memory_budget=8 * 2**30)
    block_1_map = 64 * 256 * 256 * 4 // resource.getpagesize()
    faults = _faults_per_iteration(engine, style, settings)[2:]
    assert sum(faults) < 4 * block_1_map, faults


@pytest.fixture
def kept(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """What each run asked of ``large_blocks_kept``."""
    asked: list[bool] = []

    @contextlib.contextmanager
    def record(keep: bool):
        asked.append(keep)
        yield

    monkeypatch.setattr(transfer.allocator, "large_blocks_kept", record)
    return asked


def test_a_run_keeps_blocks_when_its_budget_has_room(engine, content, style, tiny, kept):
    engine.stylize(content, [style], tiny(memory_budget=8 * 2**30, precision="fp32"))
    assert kept == [True]


def test_a_run_that_fills_its_budget_keeps_none(engine, style, tiny, kept):
    """Tiles fill the budget they are given: the peak the run plans leaves too little spare."""
    settings = tiny(size=400, precision="fp32", initial_iterations=1)
    content = np.random.default_rng(0).random((256, 400, 3), dtype=np.float32)
    settings = settings.replace(memory_budget=budget_for_tiles(settings, 256, 400, tiles=2))
    engine.stylize(content, [style], settings)
    assert kept == [False]
