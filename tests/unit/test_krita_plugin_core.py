"""The Krita plugin's pure modules (pixel layouts, recent styles), outside Krita.

Real Krita checks what these modules assume about it (tests/editors/test_krita_*.py); these
tests pin the conversions themselves, in milliseconds.
"""

from __future__ import annotations

import socket
import struct
import sys
import time
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
sys.path[:0] = [str(PLUGINS), str(PLUGINS / "krita")]

import nst_previews as previews  # noqa: E402  (shared with GIMP since issue 14)
from neural_style_transfer.options import push_recent  # noqa: E402
from neural_style_transfer.pixels import (  # noqa: E402
    UnsupportedColor,
    layout_for,
    rgba8_to_layout,
)
from nst_client import Client, PixelLayout  # noqa: E402

RED_HALF_ALPHA = bytes([255, 0, 0, 128])  # one RGBA u8 pixel


@pytest.mark.parametrize(
    ("depth", "channels", "sample", "size"),
    [("U8", "BGRA", "u8", 1), ("U16", "BGRA", "u16", 2), ("F16", "RGBA", "f16", 2),
     ("F32", "RGBA", "f32", 4)],
)
def test_layout_follows_krita_channel_order_per_depth(depth, channels, sample, size):
    layout = layout_for("RGBA", depth)
    assert layout == PixelLayout(channels, sample)
    assert layout.bytes_per_sample == size
    assert layout.byte_count(3, 2) == 3 * 2 * 4 * size
    assert layout.as_dict(3, 2) == {"width": 3, "height": 2, "channels": channels,
                                    "sample": sample}


@pytest.mark.parametrize(("model", "depth"), [("CMYKA", "U8"), ("LABA", "U16"), ("GRAYA", "U8"),
                                              ("RGBA", "U32")])
def test_other_colour_spaces_are_refused_with_what_to_do(model, depth):
    with pytest.raises(UnsupportedColor, match="Convert Image Color Space") as error:
        layout_for(model, depth)
    assert f"{model} {depth}" in str(error.value)


def test_preview_pixels_become_the_layers_own_layout():
    assert rgba8_to_layout(RED_HALF_ALPHA, layout_for("RGBA", "U8")) == bytes([0, 0, 255, 128])
    assert rgba8_to_layout(RED_HALF_ALPHA, layout_for("RGBA", "U16")) == struct.pack(
        "<4H", 0, 0, 65535, 128 * 257
    )
    assert rgba8_to_layout(RED_HALF_ALPHA, layout_for("RGBA", "F32")) == struct.pack(
        "<4f", 1.0, 0.0, 0.0, 128 / 255
    )
    assert rgba8_to_layout(RED_HALF_ALPHA, layout_for("RGBA", "F16")) == struct.pack(
        "<4e", 1.0, 0.0, 0.0, 128 / 255
    )
    with pytest.raises(ValueError, match="4 bytes per pixel"):
        rgba8_to_layout(b"\x00\x00\x00", layout_for("RGBA", "U8"))


def test_recent_styles():
    assert push_recent(["b", "a", "c"], "a", limit=2) == ["a", "b"]


def test_a_preview_is_fetched_once_the_last_is_shown_and_at_most_once_a_second():
    """Issue 17: each preview asked for costs the job time on the server."""
    now = [0.0]
    pacer = previews.PreviewPacer(interval=1.0, clock=lambda: now[0])
    assert pacer.due()
    pacer.in_flight()  # handed to Krita ...
    now[0] = 5.0
    assert not pacer.due()  # ... and not yet on the canvas
    pacer.shown()
    assert pacer.due()
    now[0] = 5.9
    assert not pacer.due()  # within the second, though nothing is in flight
    now[0] = 6.0
    assert pacer.due()


def test_a_failed_or_timed_out_preview_is_skipped(monkeypatch):
    """A preview is worth less than the job: no error may end the job's view in Krita."""
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        dead = probe.getsockname()[1]
    assert previews.fetch(Client(f"http://127.0.0.1:{dead}", "t"), "a" * 32, 64) is None
    with socket.socket() as silent:  # accepts, and never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen()
        monkeypatch.setattr(previews, "TIMEOUT_S", 0.3)
        started = time.monotonic()
        client = Client(f"http://127.0.0.1:{silent.getsockname()[1]}", "t", timeout=60)
        assert previews.fetch(client, "a" * 32, 64) is None
        assert time.monotonic() - started < 5  # its own timeout, not the client's 60 s
