"""Every bad request gets a JSON error with the right 4xx, and the server keeps serving."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
import requests
from conftest import QUICK, get, png_bytes, rgba_pixels, submit
from live_server import wait_for
from PIL import Image

RAW = {"width": 4, "height": 2, "channels": "RGBA", "sample": "u8"}


def error_of(answer: requests.Response, status: int) -> dict:
    assert answer.status_code == status, answer.text
    assert answer.headers["Content-Type"] == "application/json"
    error = answer.json()["error"]
    assert error["code"] and error["message"]
    return error


@pytest.fixture
def content() -> bytes:
    return png_bytes(rgba_pixels())


@pytest.mark.parametrize("settings, setting", [
    ({"no_such_setting": 1}, "no_such_setting"),
    ({"style_weight": -1}, "style_weight"),
    ({"size": 10**6}, "size"),
    ({"preset": "ultra"}, "preset"),
    ({"content_layers": ["conv9_9"]}, "content_layers"),
    ({"content_layers": 5}, "content_layers"),
    ({"style_layers": 5}, "style_layers"),
    ({"style_layers": ["conv1_1"]}, "style_layers"),
    ({"optimizer": "sgd"}, "optimizer"),
    ({"init": "/etc/passwd"}, "init"),
    ({"init_image": "/etc/passwd"}, "init_image"),
])
def test_bad_settings_name_the_setting(live_server, content, style_png, settings, setting):
    error = error_of(submit(live_server, content, style_png, settings=settings), 400)
    assert error["code"] == "bad_settings"
    assert error["setting"] == setting
    assert setting in error["message"]


def test_settings_that_are_not_json(live_server, content, style_png):
    answer = requests.post(f"{live_server.url}/v1/jobs", headers=live_server.headers(),
                           files={"content": ("c.png", content), "style": ("s.png", style_png)},
                           data={"settings": "{not json"}, timeout=10)
    assert error_of(answer, 400)["code"] == "bad_settings"


def test_too_many_iterations(live_server, content, style_png):
    settings = {**QUICK, "initial_iterations": 10000}
    error = error_of(submit(live_server, content, style_png, settings=settings), 400)
    assert error["code"] == "too_many_iterations"
    assert "5000" in error["message"]


@pytest.mark.parametrize("garbage", [b"not an image at all", b"\x89PNG\r\n\x1a\n" + b"\0" * 40,
                                     b"\xff\xd8\xff\xe0broken jpeg"])
def test_garbage_content(live_server, style_png, garbage):
    error = error_of(submit(live_server, garbage, style_png), 400)
    assert "content" in error["message"]


def test_garbage_style_names_which_style(live_server, content, style_png):
    error = error_of(submit(live_server, content, [style_png, b"GIF89a..."]), 400)
    assert "style image 2" in error["message"]


def test_layout_that_does_not_match_the_bytes(live_server, style_png):
    error = error_of(submit(live_server, b"\0" * 31, style_png, layout=RAW), 400)
    assert error["code"] == "layout_mismatch"
    assert "32 bytes" in error["message"]


@pytest.mark.parametrize("layout", [
    {**RAW, "channels": "ARGB"}, {**RAW, "sample": "u32"}, {**RAW, "width": 0},
    {"width": 4, "height": 2}, {**RAW, "height": "2"},
])
def test_bad_layouts(live_server, style_png, layout):
    error_of(submit(live_server, b"\0" * 32, style_png, layout=layout), 400)


def test_mask_of_the_wrong_size(live_server, style_png):
    answer = submit(live_server, b"\0" * 32, style_png, layout=RAW, mask=b"\xff" * 7)
    assert error_of(answer, 400)["code"] == "mask_mismatch"


def test_missing_parts(live_server, content, style_png):
    no_style = requests.post(f"{live_server.url}/v1/jobs", headers=live_server.headers(),
                             files={"content": ("c.png", content)}, timeout=10)
    assert error_of(no_style, 400)["code"] == "missing_style"
    no_content = requests.post(f"{live_server.url}/v1/jobs", headers=live_server.headers(),
                               files={"style": ("s.png", style_png)}, timeout=10)
    assert error_of(no_content, 400)["code"] == "missing_content"
    as_json = requests.post(f"{live_server.url}/v1/jobs", headers=live_server.headers(),
                            json={"content": "x"}, timeout=10)
    error_of(as_json, 415)


@pytest.mark.parametrize("weights", ["[1]", "[1, -1]", "[0, 0]", "\"heavy\"", "[1, NaN]",
                                     "[1e308, 1e308]", "[1, 1e7]", "[1, Infinity]"])
def test_bad_style_weights(live_server, content, style_png, weights):
    answer = submit(live_server, content, [style_png, style_png], style_weights=weights)
    assert error_of(answer, 400)["code"] == "bad_style_weights"


def test_too_many_styles(live_server, content, style_png):
    error = error_of(submit(live_server, content, [style_png] * 9), 400)
    assert error["code"] == "too_many_styles"


def test_decompression_bomb_is_refused_before_decoding(live_server, style_png):
    # 8000 x 8000 = 64 megapixels of one colour: a tiny file, over the 40 MP limit.
    bomb = Image.new("L", (8000, 8000))
    buffer = io.BytesIO()
    bomb.save(buffer, "PNG")
    assert len(buffer.getvalue()) < 200_000
    error = error_of(submit(live_server, buffer.getvalue(), style_png), 413)
    assert error["code"] == "too_many_pixels"


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer wrong"},
                                     {"Authorization": "Basic abc"}])
def test_wrong_or_missing_token(live_server, content, style_png, headers):
    error = error_of(submit(live_server, content, style_png, headers=headers), 401)
    assert error["code"] == "unauthorized"
    status = requests.get(f"{live_server.url}/v1/jobs/{'0' * 32}", headers=headers, timeout=10)
    error_of(status, 401)


def test_foreign_host_header_is_refused(live_server):
    """A DNS-rebinding page reaches 127.0.0.1 under its own name: refuse it, even for health."""
    answer = requests.get(f"{live_server.url}/v1/health", timeout=10,
                          headers={"Host": f"attacker.example:{live_server.port}"})
    assert error_of(answer, 403)["code"] == "bad_host"
    ok = requests.get(f"{live_server.url}/v1/health", timeout=10,
                      headers={"Host": f"localhost:{live_server.port}"})
    assert ok.status_code == 200


@pytest.mark.parametrize("path", ["", "/result", "/preview", "/events"])
def test_unknown_job(live_server, path):
    for job_id in ("0" * 32, "../../etc/passwd", "x"):
        answer = get(live_server, f"/v1/jobs/{job_id}{path}")
        assert answer.status_code == 404
    assert get(live_server, f"/v1/jobs/{'0' * 32}{path}").json()["error"]["code"] == "unknown_job"


def test_result_before_it_is_ready(live_server, content, style_png):
    job_id = submit(live_server, content, style_png,
                    settings={**QUICK, "initial_iterations": 4000}).json()["id"]
    try:
        answer = get(live_server, f"/v1/jobs/{job_id}/result")
        assert error_of(answer, 409)["code"] == "not_ready"
    finally:
        requests.delete(f"{live_server.url}/v1/jobs/{job_id}", headers=live_server.headers(),
                        timeout=10)


@pytest.mark.parametrize("size", ["-5", "²", "１２８", "64.0", "99999999999999999999"])
def test_bad_preview_size(live_server, content, style_png, size):
    job_id = submit(live_server, content, style_png).json()["id"]
    answer = get(live_server, f"/v1/jobs/{job_id}/preview", params={"size": size})
    assert error_of(answer, 400)["code"] == "bad_size"


def test_unknown_route_and_method(live_server):
    error_of(get(live_server, "/v1/nothing-here"), 404)
    error_of(requests.put(f"{live_server.url}/v1/jobs", headers=live_server.headers(),
                          timeout=10), 405)


def test_server_still_serves_after_all_of_that(live_server, content, style_png):
    job_id = submit(live_server, content, style_png).json()["id"]
    assert wait_for(live_server, job_id)["state"] == "done"
    pixels = np.frombuffer(get(live_server, f"/v1/jobs/{job_id}/result").content[:8], np.uint8)
    assert pixels.size == 8
    assert json.loads(requests.get(f"{live_server.url}/v1/health", timeout=10).text)["status"]
