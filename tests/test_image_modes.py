"""Every pixel format Pillow reads reaches the scorer as the picture a person sees (issue 12, item 11):
16-bit grey and RGB, palettes with a transparent entry, alpha, CMYK."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from reward_model.interface import ImageError, load_image, validate_image


def write_png16(path, pixels: np.ndarray) -> None:
    """A 16-bit PNG written by hand (Pillow cannot write 16-bit RGB): grey for 2-D, RGB for 3-D arrays."""
    height, width = pixels.shape[:2]
    colour_type = 0 if pixels.ndim == 2 else 2
    rows = b"".join(b"\x00" + pixels[y].astype(">u2").tobytes() for y in range(height))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows))
                     + chunk(b"IEND", b""))


def test_16_bit_grey_keeps_its_brightness(tmp_path):
    ramp = np.tile(np.linspace(0, 65535, 16).astype(np.uint16), (4, 1))
    write_png16(tmp_path / "grey16.png", ramp)
    assert Image.open(tmp_path / "grey16.png").mode.startswith("I;16")  # the case Pillow's convert clips
    pixels = np.asarray(load_image(tmp_path / "grey16.png"))
    expected = np.rint(ramp / 257).astype(np.uint8)
    assert np.abs(pixels[..., 0].astype(int) - expected).max() <= 1
    assert (pixels[..., 0] == pixels[..., 2]).all() and pixels.min() == 0 and pixels.max() == 255


def test_16_bit_rgb_keeps_its_colours(tmp_path):
    pixels = np.zeros((4, 4, 3), np.uint16)
    pixels[..., 0], pixels[..., 1] = 65535, 32768
    write_png16(tmp_path / "rgb16.png", pixels)
    assert load_image(tmp_path / "rgb16.png").getpixel((0, 0)) == (255, 128, 0)


def test_palette_with_a_transparent_entry_shows_white_behind_it(tmp_path):
    image = Image.new("P", (4, 4), 0)
    image.putpalette([0, 0, 0, 220, 30, 30])  # entry 0 black but transparent, entry 1 red
    image.putpixel((1, 1), 1)
    image.save(tmp_path / "p.png", transparency=0)
    loaded = load_image(tmp_path / "p.png")
    assert loaded.getpixel((0, 0)) == (255, 255, 255) and loaded.getpixel((1, 1)) == (220, 30, 30)


@pytest.mark.parametrize("mode, colour", [("RGBA", (0, 0, 0, 0)), ("LA", (0, 0))])
def test_fully_transparent_pixels_are_not_their_hidden_colour(mode, colour):
    image = Image.new(mode, (4, 4), colour)
    assert validate_image(image).getpixel((0, 0)) == (255, 255, 255)


def test_half_transparent_red_over_white_is_pink():
    red, green, blue = validate_image(Image.new("RGBA", (2, 2), (255, 0, 0, 128))).getpixel((0, 0))
    assert red == 255 and 120 <= green <= 135 and green == blue


def test_cmyk_jpeg_is_converted_to_rgb(tmp_path):
    Image.new("CMYK", (8, 8), (0, 255, 255, 0)).save(tmp_path / "red.jpg", quality=100)
    red, green, blue = load_image(tmp_path / "red.jpg").getpixel((4, 4))
    assert red > 240 and green < 15 and blue < 15


def test_float_images_outside_0_1_are_refused():
    with pytest.raises(ImageError, match="outside 0..1"):
        validate_image(Image.fromarray(np.full((4, 4), 7.5, np.float32), "F"))
    assert validate_image(Image.fromarray(np.full((4, 4), 0.5, np.float32), "F")).getpixel((0, 0)) == (128,) * 3
