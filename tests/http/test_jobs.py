"""Jobs end to end over loopback: submit, follow, fetch, in every form the editors send."""

from __future__ import annotations

import io
import json
import time

import numpy as np
import png
import pytest
import requests
import tifffile
from conftest import LONG, QUICK, get, png_bytes, rgba_pixels, submit
from live_server import wait_for
from PIL import Image

DTYPES = {"u8": "<u1", "u16": "<u2", "f16": "<f2", "f32": "<f4"}


def run_job(server, content: bytes, style: bytes, **kwargs) -> requests.Response:
    answer = submit(server, content, style, **kwargs)
    assert answer.status_code == 202, answer.text
    status = wait_for(server, answer.json()["id"])
    assert status["state"] == "done", status
    return get(server, status["urls"]["result"])


def test_png_job_end_to_end(live_server, style_png):
    pixels = rgba_pixels()
    answer = submit(live_server, png_bytes(pixels), style_png)
    assert answer.status_code == 202
    job = answer.json()
    assert answer.headers["Location"] == job["urls"]["self"]
    assert job["state"] == "queued"

    status = wait_for(live_server, job["id"])
    assert status["state"] == "done"
    assert status["iteration"] == status["total"] == 2
    assert status["percent"] == 100.0
    assert status["error"] is None
    assert set(status["losses"]) >= {"content", "style", "total"}

    result = get(live_server, job["urls"]["result"])
    assert result.status_code == 200
    assert result.headers["Content-Type"] == "image/png"
    out = np.asarray(Image.open(io.BytesIO(result.content)))
    assert out.shape == pixels.shape
    np.testing.assert_array_equal(out[..., 3], pixels[..., 3])
    assert not np.array_equal(out[..., :3], pixels[..., :3])


def test_result_waits_for_a_client_that_dropped_and_can_be_fetched_again(live_server,
                                                                         style_png):
    job_id = submit(live_server, png_bytes(rgba_pixels(seed=3)), style_png).json()["id"]
    wait_for(live_server, job_id)  # nobody fetched the result while the job ran
    first, again = (get(live_server, f"/v1/jobs/{job_id}/result") for _ in range(2))
    assert first.status_code == again.status_code == 200
    assert first.content == again.content


@pytest.mark.parametrize("sample", ["u8", "u16", "f16", "f32"])
@pytest.mark.parametrize("channels", ["RGBA", "BGRA"])
def test_raw_layouts_round_trip_with_bit_exact_alpha(live_server, style_png, sample, channels):
    rng = np.random.default_rng(7)
    height, width = 12, 20
    dtype = np.dtype(DTYPES[sample])
    if dtype.kind == "f":
        pixels = rng.random((height, width, 4)).astype(dtype)
        pixels[0, :, 3] = np.array(0.123456789, dtype=dtype)  # not representable in 8 bits
    else:
        top = np.iinfo(dtype).max
        pixels = rng.integers(0, top + 1, size=(height, width, 4)).astype(dtype)
    layout = {"width": width, "height": height, "channels": channels, "sample": sample}

    result = run_job(live_server, pixels.tobytes(), style_png, layout=layout)

    assert result.headers["Content-Type"] == "application/octet-stream"
    assert result.headers["X-NST-Channels"] == channels
    assert result.headers["X-NST-Sample"] == sample
    out = np.frombuffer(result.content, dtype=dtype).reshape(height, width, 4)
    assert out[..., 3].tobytes() == pixels[..., 3].tobytes()
    assert not np.array_equal(out[..., :3], pixels[..., :3])


def test_bgra_colour_comes_back_in_bgra_order(live_server, style_png):
    """A pure blue layer, sent as BGRA, must come back blue-dominated, not red."""
    pixels = np.zeros((16, 16, 4), np.uint8)
    pixels[..., 0] = 255  # B in BGRA
    pixels[..., 3] = 255
    layout = {"width": 16, "height": 16, "channels": "BGRA", "sample": "u8"}
    settings = {**QUICK, "style_weight": 0.0001}  # keep the content's colour
    result = run_job(live_server, pixels.tobytes(), style_png, layout=layout, settings=settings)
    out = np.frombuffer(result.content, np.uint8).reshape(16, 16, 4).astype(int)
    assert out[..., 0].mean() > out[..., 2].mean() + 100


def test_sixteen_bit_png_comes_back_sixteen_bit(live_server, style_png):
    rng = np.random.default_rng(1)
    pixels = rng.integers(0, 65536, size=(10, 14, 4), dtype=np.uint16)
    buffer = io.BytesIO()
    png.Writer(width=14, height=10, alpha=True, greyscale=False, bitdepth=16).write(
        buffer, pixels.reshape(10, 14 * 4))

    result = run_job(live_server, buffer.getvalue(), style_png)

    width, height, rows, info = png.Reader(bytes=result.content).asDirect()
    assert (width, height, info["bitdepth"], info["alpha"]) == (14, 10, 16, True)
    out = np.array([np.asarray(row, np.uint16) for row in rows]).reshape(10, 14, 4)
    np.testing.assert_array_equal(out[..., 3], pixels[..., 3])


def test_float_tiff_comes_back_float(live_server, style_png):
    pixels = np.random.default_rng(2).random((9, 11, 4)).astype(np.float32)
    buffer = io.BytesIO()
    tifffile.imwrite(buffer, pixels, photometric="rgb", extrasamples=["unassalpha"])

    result = run_job(live_server, buffer.getvalue(), style_png)

    assert result.headers["Content-Type"] == "image/tiff"
    out = tifffile.imread(io.BytesIO(result.content))
    assert out.dtype == np.float32 and out.shape == pixels.shape
    np.testing.assert_array_equal(out[..., 3], pixels[..., 3])


@pytest.mark.parametrize("kind", ["JPEG", "WEBP"])
def test_other_file_types_come_back_as_sent(live_server, style_png, kind):
    buffer = io.BytesIO()
    Image.fromarray(rgba_pixels()[..., :3]).save(buffer, kind)
    result = run_job(live_server, buffer.getvalue(), style_png)
    assert result.headers["Content-Type"] == f"image/{kind.lower()}"
    assert Image.open(io.BytesIO(result.content)).size == (24, 16)


def test_mask_makes_the_result_transparent_outside_the_selection(live_server, style_png):
    pixels = rgba_pixels()
    pixels[..., 3] = 255
    mask = np.zeros(pixels.shape[:2], np.uint8)
    mask[:, :10] = 255
    layout = {"width": 24, "height": 16, "channels": "RGBA", "sample": "u8"}
    result = run_job(live_server, pixels.tobytes(), style_png, layout=layout,
                     mask=mask.tobytes())
    out = np.frombuffer(result.content, np.uint8).reshape(16, 24, 4)
    assert (out[:, :10, 3] == 255).all()
    assert (out[:, 10:, 3] == 0).all()


def test_several_styles_with_blend_weights(live_server, style_png):
    other = png_bytes(np.full((20, 20, 3), (200, 30, 30), np.uint8))
    result = run_job(live_server, png_bytes(rgba_pixels()), [style_png, other],
                     style_weights=json.dumps([0.3, 0.7]))
    assert result.status_code == 200


def test_events(live_server, style_png):
    settings = {**QUICK, "initial_iterations": 12, "preview_every": 2}
    job = submit(live_server, png_bytes(rgba_pixels()), style_png, settings=settings).json()
    with requests.get(f"{live_server.url}{job['urls']['events']}", headers=live_server.headers(),
                      stream=True, timeout=120) as stream:
        assert stream.headers["Content-Type"].startswith("text/event-stream")
        events = [json.loads(line[len("data: "):]) for line in stream.iter_lines(
            decode_unicode=True) if line.startswith("data: ")]
    assert events[-1]["state"] == "done"
    assert [e["iteration"] for e in events] == sorted(e["iteration"] for e in events)
    assert not events[-1]["has_preview"]  # nobody asked for one


def test_a_preview_is_made_when_asked_at_the_size_asked_and_freed_at_the_end(live_server,
                                                                             style_png):
    job = submit(live_server, png_bytes(rgba_pixels()), style_png, settings=LONG).json()
    url = f"{job['urls']['preview']}?size=16"
    deadline = time.monotonic() + 60
    while (preview := get(live_server, url)).status_code == 404:  # the first ask makes one
        assert preview.json()["error"]["code"] == "no_preview"
        assert time.monotonic() < deadline, "no preview was made after asking for it"
        time.sleep(0.05)
    assert preview.headers["Content-Type"] == "image/png"
    assert max(Image.open(io.BytesIO(preview.content)).size) == 16  # made at that size
    assert get(live_server, job["urls"]["self"]).json()["has_preview"]
    requests.delete(f"{live_server.url}{job['urls']['self']}", headers=live_server.headers(),
                    timeout=10)
    assert get(live_server, url).status_code == 404  # freed with the job


def test_no_preview_yet_is_a_clear_404(live_server, style_png):
    settings = {**LONG, "preview_every": 0}  # previews only at the end of the run
    answer = submit(live_server, png_bytes(rgba_pixels()), style_png, settings=settings)
    job_id = answer.json()["id"]
    try:
        answer = get(live_server, f"/v1/jobs/{job_id}/preview")
        assert answer.status_code == 404
        assert answer.json()["error"]["code"] == "no_preview"
    finally:
        requests.delete(f"{live_server.url}/v1/jobs/{job_id}", headers=live_server.headers(),
                        timeout=10)


def test_health_needs_no_token_and_reports_limits(live_server):
    health = requests.get(f"{live_server.url}/v1/health", timeout=10).json()
    assert health["status"] == "ok"
    assert health["device"] == "cpu"
    assert "VGG-19" in health["weights"]
    assert set(health["limits"]) == {"max_upload_bytes", "max_pixels", "max_styles",
                                     "max_iterations", "max_queue", "max_event_streams"}
    assert isinstance(health["queue_length"], int)


def test_openapi_document_lists_the_api(live_server):
    document = requests.get(f"{live_server.url}/v1/openapi.json", timeout=10).json()
    assert document["openapi"].startswith("3.")
    assert {"/v1/jobs", "/v1/jobs/{job_id}", "/v1/jobs/{job_id}/result",
            "/v1/jobs/{job_id}/events", "/v1/jobs/{job_id}/preview",
            "/v1/health"} <= set(document["paths"])


def test_no_cors_headers(live_server):
    answer = requests.get(f"{live_server.url}/v1/health", timeout=10,
                          headers={"Origin": "https://example.com"})
    assert not any(name.lower().startswith("access-control-") for name in answer.headers)
