"""Image loading refuses bad files with one clear sentence, and hashes pictures by content."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from reward_model.interface import ImageError, image_hash, load_image, validate_image
from tests.scorer_fixtures import random_image


def write_png(path, image: Image.Image) -> None:
    image.save(path, format="PNG")


def test_loads_a_real_file_as_rgb(tmp_path):
    path = tmp_path / "grey.png"
    Image.new("L", (40, 30), 128).save(path)
    image = load_image(path)
    assert image.mode == "RGB" and image.size == (40, 30)


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("empty.png", b"", "empty file"),
        ("notes.png", b"this is plain text, not a picture", "not an image"),
    ],
)
def test_bad_files(tmp_path, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(ImageError, match=message):
        load_image(path)


def test_missing_file(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        load_image(tmp_path / "absent.png")


def test_truncated_file(tmp_path):
    buffer = io.BytesIO()
    random_image(0, (64, 64)).save(buffer, format="PNG")
    path = tmp_path / "cut.png"
    path.write_bytes(buffer.getvalue()[: len(buffer.getvalue()) // 2])
    with pytest.raises(ImageError, match="truncated|unreadable"):
        load_image(path)


def test_huge_image_is_refused_before_decoding(tmp_path):
    path = tmp_path / "big.png"
    write_png(path, Image.new("RGB", (300, 200)))
    with pytest.raises(ImageError, match="above the limit"):
        load_image(path, max_image_pixels=50_000)
    assert load_image(path, max_image_pixels=60_000).size == (300, 200)


def test_in_memory_checks():
    with pytest.raises(ImageError, match="aspect ratio"):
        validate_image(Image.new("RGB", (1000, 2)))
    with pytest.raises(ImageError, match="expected a PIL image"):
        validate_image("picture.png")
    assert validate_image(Image.new("RGBA", (8, 8))).mode == "RGB"


def test_hash_depends_on_pixels_not_on_the_file(tmp_path):
    image = random_image(3, (32, 32))
    write_png(tmp_path / "a.png", image)
    image.save(tmp_path / "a.bmp", format="BMP")
    from_png, from_bmp = load_image(tmp_path / "a.png"), load_image(tmp_path / "a.bmp")
    assert image_hash(from_png) == image_hash(from_bmp)
    assert image_hash(from_png) != image_hash(random_image(4, (32, 32)))
