"""fer_features.faces.images: the one decoding path, its pixel limit, and property-based tests of it.

The properties: for any bytes (random, or a real JPEG/PNG with bytes flipped, cut, inserted or
its header's size fields rewritten), :func:`decode_image` either returns a well-formed uint8
image within the pixel limit or raises an :class:`ImageError` subclass with a one-line message
naming the input. Never another exception, never a decompression bomb decoded. The example
counts are small so that the file runs in seconds.
"""

from __future__ import annotations

import io
import struct

import numpy as np
import pytest
from conftest import png_claiming
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from PIL import Image

from fer_features.faces.images import (
    DEFAULT_MAX_PIXELS,
    CorruptImageError,
    EmptyImageError,
    ImageError,
    NotAnImageError,
    TooManyPixelsError,
    decode_image,
    default_max_pixels,
)

FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)


def encoded(image: np.ndarray, fmt: str, **kwargs) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, format=fmt, **kwargs)
    return buf.getvalue()


def _real_images() -> dict[str, bytes]:
    """Small real photos (skimage's astronaut and cameraman, resized) as JPEG and PNG files."""
    from skimage import data

    astro = np.asarray(Image.fromarray(data.astronaut()).resize((64, 64)))
    camera = np.asarray(Image.fromarray(data.camera()).resize((48, 48)))
    return {
        "astronaut.jpg": encoded(astro, "JPEG", quality=85),
        "astronaut-progressive.jpg": encoded(astro, "JPEG", quality=70, progressive=True),
        "camera.png": encoded(camera, "PNG"),
        "astronaut.png": encoded(astro, "PNG"),
    }


REAL = _real_images()


def assert_decodes_or_refuses(data: bytes, max_pixels: int = DEFAULT_MAX_PIXELS) -> None:
    """The property: a sound uint8 image within the limit, or an ImageError whose one-line message names the input."""
    try:
        image = decode_image(data, max_pixels=max_pixels, name="fuzzed")
    except ImageError as exc:
        message = str(exc)
        assert message.startswith("fuzzed: ") and "\n" not in message, message
        return
    assert image.dtype == np.uint8 and image.ndim == 3 and image.shape[2] == 3
    assert 0 < image.shape[0] * image.shape[1] <= max_pixels


# --------------------------------------------------------------------------- the plain cases


def test_real_files_decode():
    for name, data in REAL.items():
        image = decode_image(data, name=name)
        assert image.dtype == np.uint8 and image.shape[2] == 3, name
        assert image.shape[:2] in ((64, 64), (48, 48))


def test_grey_mode_is_pillows_plain_conversion():
    data = REAL["camera.png"]
    grey = decode_image(data, mode="L")
    np.testing.assert_array_equal(grey, np.asarray(Image.open(io.BytesIO(data)).convert("L")))


def test_each_failure_has_its_own_error():
    with pytest.raises(EmptyImageError):
        decode_image(b"")
    with pytest.raises(NotAnImageError, match="not an image Pillow can read"):
        decode_image(b"hello, this is text")
    with pytest.raises(CorruptImageError, match="truncated or corrupt"):
        decode_image(REAL["astronaut.png"][:200])
    with pytest.raises(TooManyPixelsError, match="image has 400,000,000 pixels; the limit is 25,000,000"):
        decode_image(png_claiming(20000, 20000))  # over twice Pillow's limit: refused by Pillow's open
    with pytest.raises(TooManyPixelsError, match="6000x5000 = 30,000,000 pixels; the limit is 25,000,000"):
        decode_image(png_claiming(6000, 5000))  # under Pillow's limit: refused by ours


def test_a_bomb_is_refused_from_its_header_before_decoding(tmp_path, monkeypatch):
    """The issue's 20000x20000 PNG: refused without Pillow decoding anything (load is never called)."""
    path = tmp_path / "bomb.png"
    path.write_bytes(png_claiming(20000, 20000))
    monkeypatch.setattr(Image.Image, "load", lambda self: pytest.fail("pixels decoded"))
    with pytest.raises(TooManyPixelsError) as info:
        decode_image(path)
    assert str(info.value).startswith(f"{path}: ") and "--max-pixels" in str(info.value)


def test_a_real_large_png_is_refused_at_the_default_limit_and_read_when_raised(tmp_path):
    """A real 6000x5000 PNG (30 MP, a small file): over the 25 MP default, read with the limit raised."""
    path = tmp_path / "big.png"
    Image.new("L", (6000, 5000), 90).save(path, optimize=False)
    assert path.stat().st_size < 1_000_000
    with pytest.raises(TooManyPixelsError, match="6000x5000"):
        decode_image(path)
    assert decode_image(path, max_pixels=30_000_000, mode="L").shape == (5000, 6000)


def test_the_limit_comes_from_the_environment(monkeypatch):
    data = REAL["camera.png"]  # 48x48 = 2,304 pixels
    monkeypatch.setenv("FER_MAX_PIXELS", "2000")
    assert default_max_pixels() == 2000
    with pytest.raises(TooManyPixelsError, match="48x48 = 2,304 pixels; the limit is 2,000"):
        decode_image(data)
    monkeypatch.setenv("FER_MAX_PIXELS", "50_000_000")
    assert default_max_pixels() == 50_000_000
    monkeypatch.setenv("FER_MAX_PIXELS", "lots")
    with pytest.raises(ValueError, match="FER_MAX_PIXELS"):
        default_max_pixels()


def test_missing_and_empty_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="no such file"):
        decode_image(tmp_path / "none.png")
    (tmp_path / "empty.png").write_bytes(b"")
    with pytest.raises(EmptyImageError, match="empty.png: empty file"):
        decode_image(tmp_path / "empty.png")


# --------------------------------------------------------------------------- property-based


@FUZZ
@given(st.binary(max_size=4096))
@example(b"\x89PNG\r\n\x1a\n")
@example(b"\xff\xd8\xff")
@example(b"GIF89a")
@example(b"BM" + b"\x00" * 60)
def test_random_bytes_never_raise_anything_but_image_errors(data):
    assert_decodes_or_refuses(data)


@st.composite
def mutated_real_files(draw):
    """A real JPEG or PNG with bytes flipped, a cut, an insertion, or a header size field rewritten."""
    data = bytearray(REAL[draw(st.sampled_from(sorted(REAL)))])
    kind = draw(st.sampled_from(["flip", "truncate", "insert", "size"]))
    if kind == "flip":
        for _ in range(draw(st.integers(1, 8))):
            i = draw(st.integers(0, len(data) - 1))
            data[i] = draw(st.integers(0, 255))
    elif kind == "truncate":
        data = data[: draw(st.integers(0, len(data) - 1))]
    elif kind == "insert":
        i = draw(st.integers(0, len(data)))
        data[i:i] = draw(st.binary(min_size=1, max_size=64))
    else:  # the width/height fields: PNG IHDR at byte 16, JPEG's SOF0/SOF2 segment
        side = draw(st.sampled_from([0, 1, 0xFFFF, 0x7FFFFFFF, 20000]))
        if data[:4] == b"\x89PNG":
            data[16:24] = struct.pack(">II", side, draw(st.sampled_from([0, 1, 0xFFFF, 20000])))
        else:
            for marker in (b"\xff\xc0", b"\xff\xc2"):
                at = data.find(marker)
                if at >= 0:
                    data[at + 5 : at + 9] = struct.pack(">HH", side & 0xFFFF, draw(st.sampled_from([0, 1, 0xFFFF])))
    return bytes(data)


@FUZZ
@given(mutated_real_files())
def test_mutated_real_files_decode_or_refuse(data):
    assert_decodes_or_refuses(data)


@FUZZ
@given(mutated_real_files(), st.integers(1, 5000))
def test_the_pixel_limit_holds_for_any_file(data, limit):
    assert_decodes_or_refuses(data, max_pixels=limit)
