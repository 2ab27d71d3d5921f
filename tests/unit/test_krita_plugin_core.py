"""The Krita plugin's pure modules (pixel layouts, recent styles), outside Krita.

Real Krita checks what these modules assume about it (tests/editors/test_krita_*.py); these
tests pin the conversions themselves, in milliseconds.
"""

from __future__ import annotations

import struct
import sys
from pathlib import Path

import pytest

PLUGINS = Path(__file__).resolve().parents[2] / "plugins"
sys.path[:0] = [str(PLUGINS), str(PLUGINS / "krita")]

from neural_style_transfer.options import push_recent  # noqa: E402
from neural_style_transfer.pixels import (  # noqa: E402
    UnsupportedColor,
    layout_for,
    rgba8_to_layout,
)
from nst_client import PixelLayout  # noqa: E402

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
