"""The server's core without HTTP: job store, queue, codec and submission checks, in-process.

api.py's handlers only translate; these modules make every decision, so they are tested here
directly, in milliseconds: no server, no engine, no sleeps (time is a fake clock).
"""

from __future__ import annotations

import io
import json
import struct
import tracemalloc
from dataclasses import replace

import numpy as np
import pytest
import tifffile
from PIL import Image
from werkzeug.datastructures import FileStorage, MultiDict

from nst_engine import Progress
from nst_server import imagecodec
from nst_server.config import Limits, ServerConfig
from nst_server.errors import (
    BadInput,
    NoPreview,
    NoSpace,
    NotReady,
    QueueFull,
    TooLarge,
    UnknownJob,
)
from nst_server.jobs import JobManager
from nst_server.rates import DeviceRate
from nst_server.store import CANCELLED, DONE, FAILED, QUEUED, RUNNING, JobStore
from nst_server.submission import Submission, parse_submission
from nst_server.worker import Worker

QUICK = {"preset": "draft", "size": 32, "scales": 1, "initial_iterations": 2}


class Clock:
    """Wall-clock time that moves only when a test says so."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def png(pixels: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "PNG")
    return buffer.getvalue()


STYLE = png(np.full((8, 8, 3), 90, dtype=np.uint8))
RAW_LAYOUT = {"width": 2, "height": 1, "channels": "BGRA", "sample": "u8"}


def files(**parts: bytes | list[bytes]) -> MultiDict:
    items = []
    for name, value in parts.items():
        for data in value if isinstance(value, list) else [value]:
            items.append((name, FileStorage(io.BytesIO(data), filename=name)))
    return MultiDict(items)


def submission(settings: dict | None = None, mask: bool = False) -> Submission:
    parts = {"content": bytes([10, 20, 30, 255, 40, 50, 60, 128]), "style": STYLE}
    if mask:
        parts["mask"] = bytes([255, 0])
    form = MultiDict({"layout": json.dumps(RAW_LAYOUT),
                      "settings": json.dumps(settings or QUICK)})
    return parse_submission(form, files(**parts), Limits())


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def config(tmp_path) -> ServerConfig:
    return ServerConfig(data_dir=tmp_path, token="t", limits=Limits(max_queue=3),
                        result_ttl_s=3600, unfetched_ttl_s=7 * 24 * 3600, max_attempts=2)


@pytest.fixture
def manager(config, clock):
    store = JobStore(config.data_dir)
    yield JobManager(config, store, clock=clock)
    store.close()


def progress(iteration: int, total: int = 2, render=None) -> Progress:
    return Progress(iteration, total, 0, 1, {"total": 1.0}, 0.0, 5.0, render=render)


# -------------------------------------------------------------------------------- submission
def test_submission_accepts_raw_pixels_and_keeps_their_form():
    accepted = submission(mask=True)
    assert accepted.form == imagecodec.Form("raw", 2, 1, "u8", channels="BGRA")
    assert accepted.styles == [STYLE] and accepted.mask == bytes([255, 0])
    assert accepted.settings.total_iterations() == 2 and accepted.style_weights is None


@pytest.mark.parametrize(
    ("parts", "fields", "code"),
    [
        ({"style": STYLE}, {}, "missing_content"),
        ({"content": [STYLE, STYLE], "style": STYLE}, {}, "duplicate_content"),
        ({"content": STYLE}, {}, "missing_style"),
        ({"content": b"hello", "style": STYLE}, {}, "unsupported_image"),
        ({"content": STYLE, "style": STYLE}, {"settings": "[1]"}, "bad_settings"),
        ({"content": STYLE, "style": STYLE}, {"settings": '{"init_image": "/etc/x"}'},
         "bad_settings"),
        ({"content": STYLE, "style": STYLE}, {"style_weights": "[0]"}, "bad_style_weights"),
        ({"content": STYLE, "style": STYLE, "mask": b"\0"}, {}, "mask_mismatch"),
        ({"content": b"\0" * 7, "style": STYLE}, {"layout": json.dumps(RAW_LAYOUT)},
         "layout_mismatch"),
    ],
)
def test_submission_refuses_a_bad_part_by_name(parts, fields, code):
    with pytest.raises(BadInput) as error:
        parse_submission(MultiDict(fields), files(**parts), Limits())
    assert error.value.code == code


def test_submission_limits_are_domain_errors():
    many = MultiDict({"settings": json.dumps({**QUICK, "initial_iterations": 50})})
    with pytest.raises(BadInput, match="limit is 10") as error:
        parse_submission(many, files(content=STYLE, style=STYLE), Limits(max_iterations=10))
    assert (error.value.code, error.value.extra) == ("too_many_iterations",
                                                     {"setting": "iterations"})
    with pytest.raises(TooLarge, match="limit is 63"):
        parse_submission(MultiDict(), files(content=STYLE, style=STYLE), Limits(max_pixels=63))


# --------------------------------------------------------------------------------- imagecodec
def test_raw_result_keeps_layout_and_alpha_and_cuts_by_the_mask():
    form = imagecodec.Form("raw", 2, 1, "u8", channels="BGRA")
    content = imagecodec.decode_raw(bytes([10, 20, 30, 255, 40, 50, 60, 128]), form)
    assert np.allclose(content.rgb[0, 0] * 255, [30, 20, 10])  # BGRA -> RGB
    mask = np.array([[255, 0]], dtype=np.uint8)
    result = imagecodec.encode_result(content.rgb, content, mask)
    assert isinstance(result, imagecodec.EncodedResult)
    assert (result.form, result.media_type) == (form, "application/octet-stream")
    assert result.body == bytes([10, 20, 30, 255, 40, 50, 60, 0])


def test_file_result_is_the_same_file_type():
    pixels = np.zeros((3, 4, 4), dtype=np.uint8)
    pixels[..., 3] = 77
    content = imagecodec.decode_file(png(pixels), max_pixels=100)
    result = imagecodec.encode_result(content.rgb, content, None)
    assert result.media_type == "image/png" and result.form.format == "png"
    back = Image.open(io.BytesIO(result.body))
    assert back.size == (4, 3) and np.all(np.asarray(back)[..., 3] == 77)


def test_codec_errors_are_domain_errors():
    with pytest.raises(TooLarge):
        imagecodec.decode_file(png(np.zeros((10, 10, 3), np.uint8)), max_pixels=99)
    with pytest.raises(BadInput, match="NaN"):
        imagecodec.decode_raw(np.full(4, np.nan, "<f4").tobytes(),
                              imagecodec.Form("raw", 1, 1, "f32"))
    with pytest.raises(BadInput) as error:
        imagecodec.parse_layout('{"width": 1}', 100)
    assert error.value.code == "invalid_layout"


def tiff(pixels: np.ndarray, **options) -> bytes:
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, pixels, **options)
    return buffer.getvalue()


def with_tiles_of(data: bytes, side: int) -> bytes:
    """A tiled TIFF whose header claims tiles of ``side`` x ``side``, whatever its pixels."""
    patched = bytearray(data)
    with tifffile.TiffFile(io.BytesIO(data)) as tif:
        for tag in ("TileWidth", "TileLength"):
            struct.pack_into("<I", patched, tif.pages.first.tags[tag].valueoffset, side)
    return bytes(patched)


def peak_bytes_of(call) -> int:
    tracemalloc.start()
    try:
        call()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize(("make", "max_pixels", "error", "message"), [
    # 100 MB of 16-bit samples, 50 to a pixel, in a 100 KB file
    (lambda: tiff(np.zeros((1000, 1000, 50), np.uint16), photometric="minisblack",
                  planarconfig="contig", compression="zlib"),
     40_000_000, BadInput, "50 samples per pixel"),
    # 16x16 pixels in one 2048x2048 tile: 25 MB once decoded, for a 1 MP limit
    (lambda: with_tiles_of(tiff(np.zeros((16, 16, 3), np.uint16), photometric="rgb",
                                tile=(16, 16)), 2048),
     1_000_000, TooLarge, "tiles are 2048x2048"),
    (lambda: tiff(np.zeros((64, 64), bool)), 40_000_000, BadInput, "1 bits per sample"),
], ids=["50-samples", "huge-tiles", "1-bit"])
def test_a_tiff_header_is_checked_before_any_pixel_is_decoded(make, max_pixels, error,
                                                              message):
    data = make()

    def decode() -> None:
        with pytest.raises(error, match=message):
            imagecodec.decode_file(data, max_pixels)

    assert peak_bytes_of(decode) < 2_000_000


# ---------------------------------------------------------------------------- jobs and store
def test_a_job_goes_queued_running_done_and_its_result_is_typed(manager, clock):
    record = manager.submit(submission())
    assert len(record.id) == 32 and manager.status(record.id)["state"] == QUEUED
    assert manager.status(record.id)["queue_position"] == 1
    with pytest.raises(NotReady) as error:
        manager.result(record.id)
    assert error.value.extra == {"state": QUEUED}
    taken = manager.take()
    assert (taken.id, taken.state, taken.attempts) == (record.id, RUNNING, 1)
    with pytest.raises(NoPreview):
        manager.preview(record.id, 64)
    manager.report(record.id, progress(1, render=lambda side: Image.new("RGB", (8, 8))))
    status = manager.status(record.id)
    assert (status["iteration"], status["percent"], status["eta"]) == (1, 50.0, 5.0)
    assert manager.preview(record.id, 64).startswith(b"\x89PNG")
    clock.advance(3)
    manager.finish(record.id, imagecodec.EncodedResult(b"pixels!!", imagecodec.Form.from_json(
        record.form)))
    status = manager.status(record.id)
    assert (status["state"], status["percent"], status["elapsed"]) == (DONE, 100.0, 3.0)
    result = manager.result(record.id)
    assert (result.body, result.form.channels) == (b"pixels!!", "BGRA")
    assert manager.store.get(record.id).fetched == clock.now


def test_previews_only_when_asked_at_most_once_a_second_and_freed_at_the_end(manager, clock):
    """Issue 17: previews made after every few iterations cost as much as the job."""
    record = manager.submit(submission())
    manager.take()
    sides: list[int] = []

    def render(side: int) -> Image.Image:
        sides.append(side)
        return Image.new("RGBA", (side, side // 2))

    manager.report(record.id, progress(1, render=render))
    assert sides == [] and not manager.status(record.id)["has_preview"]  # nobody asked
    with pytest.raises(NoPreview):
        manager.preview(record.id, 64)  # asking ...
    manager.report(record.id, progress(1, render=render))
    assert sides == [64]  # ... makes one after the next iteration, at the size asked
    assert Image.open(io.BytesIO(manager.preview(record.id, 64))).size == (64, 32)
    clock.advance(0.9)
    manager.report(record.id, progress(1, render=render))
    assert sides == [64]  # not twice within a second
    clock.advance(0.1)
    manager.report(record.id, progress(1, render=render))
    assert sides == [64, 64]
    manager.finish(record.id, imagecodec.EncodedResult(b"x", imagecodec.Form.from_json(
        record.form)))
    assert manager.live(record.id).preview is None  # freed
    assert not manager.status(record.id)["has_preview"]
    with pytest.raises(NoPreview):
        manager.preview(record.id, 64)


def test_cancel_wins_over_a_late_finish_and_fail(manager):
    record = manager.submit(submission())
    manager.take()
    live = manager.live(record.id)
    assert manager.cancel(record.id)["state"] == CANCELLED
    assert live.cancel.cancelled  # the worker stops within one iteration
    manager.finish(record.id, imagecodec.EncodedResult(b"late", imagecodec.Form.from_json(
        record.form)))
    manager.fail(record.id, "late")
    assert manager.status(record.id)["state"] == CANCELLED
    assert manager.status(record.id)["error"] == "cancelled by a client"


def test_cancel_of_a_queued_job_takes_it_out_of_the_queue(manager):
    first, second = manager.submit(submission()), manager.submit(submission())
    manager.cancel(first.id)
    assert manager.queue_length() == 1
    assert manager.status(second.id)["queue_position"] == 1
    assert manager.take().id == second.id


def test_a_failed_job_says_why(manager):
    record = manager.submit(submission())
    manager.take()
    manager.fail(record.id, "the style image is broken")
    status = manager.status(record.id)
    assert (status["state"], status["error"]) == (FAILED, "the style image is broken")
    with pytest.raises(NotReady, match="it failed: the style image is broken"):
        manager.result(record.id)


def files_of(manager: JobManager, job_id: str) -> set[str]:
    return {path.name for path in manager.store.folder(job_id).iterdir()}


def test_a_job_that_ends_keeps_its_result_and_not_its_inputs(manager):
    done, failed, cancelled = (manager.submit(submission(mask=True)) for _ in range(3))
    assert files_of(manager, done.id) == {"content", "style-0", "mask"}
    manager.take()
    manager.finish(done.id, imagecodec.EncodedResult(b"x", imagecodec.Form.from_json(
        done.form)))
    assert files_of(manager, done.id) == {"result"}
    manager.take()
    manager.fail(failed.id, "broken")
    manager.take()
    manager.cancel(cancelled.id)
    queued = manager.submit(submission())
    manager.cancel(queued.id)
    for job_id in (failed.id, cancelled.id, queued.id):
        assert files_of(manager, job_id) == set()


def test_a_job_is_marked_done_only_once_its_inputs_are_gone(manager, monkeypatch):
    """A client that polls while a job finishes must never see "done" beside its inputs."""
    record = manager.submit(submission())
    manager.take()
    files_when_done = []
    transition = manager.store.transition

    def watched(job_id, *args, **changes):
        if changes.get("state") == DONE:
            files_when_done.append(files_of(manager, job_id))
        return transition(job_id, *args, **changes)

    monkeypatch.setattr(manager.store, "transition", watched)
    manager.finish(record.id, imagecodec.EncodedResult(b"x", imagecodec.Form.from_json(
        record.form)))
    assert files_when_done == [{"result"}]


def test_a_job_is_refused_while_the_disk_is_nearly_full(config, clock):
    store = JobStore(config.data_dir)
    free = store.free_bytes()
    manager = JobManager(replace(config, min_free_disk=free + 2**30), store, clock=clock)
    with pytest.raises(NoSpace) as error:
        manager.submit(submission())
    assert error.value.code == "disk_full" and "free" in error.value.message
    assert not list(store.jobs_dir.iterdir())  # nothing was written
    store.close()


def test_unknown_and_malformed_ids(manager):
    for job_id in ("nope", "0" * 32):
        with pytest.raises(UnknownJob):
            manager.status(job_id)


def test_full_queue_is_refused_with_a_retry_hint(manager):
    for _ in range(3):
        manager.submit(submission())
    with pytest.raises(QueueFull) as error:
        manager.submit(submission())
    assert error.value.code == "queue_full" and error.value.retry_after >= 1


def test_recovery_requeues_in_order_and_fails_a_job_that_keeps_killing_the_server(
        config, clock):
    store = JobStore(config.data_dir)
    first = JobManager(config, store, clock=clock)
    a, b, c = (first.submit(submission()) for _ in range(3))
    first.take()  # a is running when the process "dies"
    again = JobManager(config, store, clock=clock)  # the next start, same store
    assert [again.take().id for _ in range(3)] == [a.id, b.id, c.id]
    assert store.get(a.id).attempts == 2
    # a was running at two deaths (max_attempts=2): the third start fails it instead.
    third = JobManager(config, store, clock=clock)
    assert store.get(a.id).state == FAILED and "stopped 2 times" in store.get(a.id).error
    assert [third.take().id for _ in range(2)] == [b.id, c.id]
    store.close()


def test_a_clean_shutdown_requeues_without_counting_an_attempt(manager):
    record = manager.submit(submission())
    taken = manager.take()
    manager.stop()
    assert manager.stopping and manager.live(record.id).cancel.cancelled
    manager.requeue(taken)
    assert manager.store.get(record.id).state == QUEUED
    assert manager.store.get(record.id).attempts == 0
    assert manager.take() is None  # stopping: workers get nothing more


def test_expiry_an_hour_after_fetching_or_a_week_unfetched(manager, clock):
    fetched, unfetched, queued = (manager.submit(submission()) for _ in range(3))
    for record in (fetched, unfetched):
        manager.take()
        manager.finish(record.id, imagecodec.EncodedResult(b"x", imagecodec.Form.from_json(
            record.form)))
    manager.result(fetched.id)
    clock.advance(3599)
    assert manager.sweep() == 0
    clock.advance(2)
    assert manager.sweep() == 1
    with pytest.raises(UnknownJob):
        manager.status(fetched.id)
    assert not manager.store.folder(fetched.id).exists()
    clock.advance(7 * 24 * 3600)
    assert manager.sweep() == 1  # the unfetched one; a queued job never expires
    assert manager.status(queued.id)["state"] == QUEUED


def test_folders_that_no_job_owns_are_swept(config, clock):
    store = JobStore(config.data_dir)
    store.write_file("a" * 32, "content", b"art")  # a crash came before the row
    manager = JobManager(config, store, clock=clock)  # the next start
    assert not store.folder("a" * 32).exists()
    kept = manager.submit(submission())
    store.write_file("b" * 32, "content", b"art")
    manager.sweep()
    assert not store.folder("b" * 32).exists()
    assert store.folder(kept.id).exists()
    store.close()


# ----------------------------------------------------------------- the first time estimate
def report(work_done: float, elapsed: float, eta: float | None) -> Progress:
    """The engine's report after ``work_done`` of 1000 units (its own ETA, or None)."""
    return Progress(int(work_done // 100), 10, 1, 1, {"total": 1.0}, elapsed, eta,
                    work_done=work_done, work_total=1000.0)


class ScriptedEngine:
    """Reports ``course`` as the engine would (``elapsed`` is its clock) and returns black;
    ``then()`` runs after each report."""

    def __init__(self, course: list[Progress], then) -> None:
        self.course, self.then = course, then

    def describe(self) -> dict:
        return {"device": "scripted", "weights": "none", "precision": "fp32"}

    def stylize(self, content, styles, settings, *, style_blend_weights=None, callback=None,
                cancel=None) -> np.ndarray:
        for progress in self.course:
            callback(progress)
            self.then()
        return np.zeros((*content.shape[:2], 3), np.float32)


def test_the_engines_own_estimate_wins_over_earlier_jobs():
    rate = DeviceRate()
    assert rate.estimate(report(100, 10.0, None)).eta is None  # nothing learned yet
    rate.learn(report(1000, 60.0, 0.0))
    assert rate.seconds_per_unit == pytest.approx(0.06)
    assert rate.estimate(report(500, 20.0, 12.5)).eta == 12.5
    assert rate.estimate(report(100, 9.0, None)).eta == pytest.approx(54.0)  # 900 units left
    rate.learn(report(1000, 80.0, 0.0))  # the device got slower: half-way there at once
    assert rate.seconds_per_unit == pytest.approx(0.07)


def test_a_job_starts_from_the_rate_of_the_jobs_before_it(manager):
    """Issue 17: the engine has no estimate after a job's first iteration (it warms up); the
    server then answers from the rate this device showed, instead of "estimating..."."""
    course = [report(100, 10.0, None), report(200, 16.0, 48.0), report(1000, 60.0, 0.0)]
    etas: list = []
    worker = Worker(manager, ScriptedEngine(course, lambda: etas.append(
        manager.status(job_id)["eta"])))
    for _ in range(2):
        job_id = manager.submit(submission()).id
        worker.run(manager.take())
        assert manager.status(job_id)["state"] == DONE
    first, second = etas[:3], etas[3:]
    assert first == [None, 48.0, 0.0]  # a new server has only the engine's estimate
    assert second == [54.0, 48.0, 0.0]  # 900 units left at 60 s per 1000
