"""Safe loading and checking of images before they reach a model.

Every problem becomes an `ImageError` with one clear sentence, so a caller can record it against that
image and go on with the rest of the batch.
"""

from __future__ import annotations

import hashlib
import warnings
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

# Above this many pixels an image is refused rather than decoded (a decompression-bomb guard); the
# model never sees more than max_pixels anyway, so nothing useful is lost.
DEFAULT_MAX_IMAGE_PIXELS = 64_000_000
# Qwen2.5-VL's resizer refuses images longer than 200 times their width (or the reverse).
MAX_ASPECT_RATIO = 200


class ImageError(ValueError):
    """An image that cannot be scored; the message says why."""


def load_image(path: str | Path, max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS) -> Image.Image:
    """Open, fully decode and check an image file; returns an RGB image or raises ImageError."""
    path = Path(path)
    if not path.exists():
        raise ImageError(f"{path}: no such file")
    if not path.is_file():
        raise ImageError(f"{path}: not a file")
    if path.stat().st_size == 0:
        raise ImageError(f"{path}: empty file (0 bytes)")
    try:
        with Image.open(path) as opened:
            _check_size(opened.size, max_image_pixels, str(path))
            return _decode(opened, str(path))
    except UnidentifiedImageError:
        raise ImageError(f"{path}: not an image file (format not recognised)") from None
    except Image.DecompressionBombError:
        raise ImageError(f"{path}: image too large to decode safely") from None
    except OSError as error:
        raise ImageError(f"{path}: unreadable image ({error})") from None


def validate_image(
    image: object, max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS, label: str = "image"
) -> Image.Image:
    """Check an in-memory image and return it decoded as RGB, or raise ImageError."""
    if not isinstance(image, Image.Image):
        raise ImageError(f"{label}: expected a PIL image, got {type(image).__name__}")
    _check_size(image.size, max_image_pixels, label)
    return _decode(image, label)


def _check_size(size: tuple[int, int], max_image_pixels: int, label: str) -> None:
    width, height = size
    if width < 1 or height < 1:
        raise ImageError(f"{label}: image has no pixels ({width}x{height})")
    if width * height > max_image_pixels:
        raise ImageError(
            f"{label}: image of {width}x{height} = {width * height:,} pixels is above the limit of "
            f"{max_image_pixels:,} pixels"
        )
    if max(width, height) / min(width, height) > MAX_ASPECT_RATIO:
        raise ImageError(f"{label}: aspect ratio of {width}x{height} is above {MAX_ASPECT_RATIO}:1")


def _decode(image: Image.Image, label: str) -> Image.Image:
    """Force the full decode now (PIL is lazy), so a truncated file fails here and not inside a batch."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image.load()
            return to_rgb(image, label)
    except Image.DecompressionBombWarning:
        raise ImageError(f"{label}: image too large to decode safely") from None
    except (OSError, SyntaxError, ValueError) as error:
        raise ImageError(f"{label}: unreadable or truncated image ({error})") from None


# Modes whose samples are wider than 8 bits: PIL's convert("RGB") clips them (a 16-bit grey PNG
# becomes all white), so they are rescaled here by their nominal range.
_WIDE_RANGE = {"I;16": 65535, "I;16L": 65535, "I;16B": 65535, "I;16N": 65535, "I": 65535}
TRANSPARENCY_BACKGROUND = (255, 255, 255)  # what a viewer shows behind transparent pixels


def to_rgb(image: Image.Image, label: str = "image") -> Image.Image:
    """8-bit RGB as a person sees the picture: wide samples rescaled, transparency over white,
    palettes and CMYK through PIL's own conversions."""
    if image.mode == "RGB":
        return image
    if image.mode in _WIDE_RANGE:
        pixels = np.asarray(image, dtype=np.float64)
        if image.mode == "I" and (pixels.min() < 0 or pixels.max() > 65535):
            raise ImageError(f"{label}: 32-bit integer samples outside 0..65535 have no defined brightness")
        grey = np.rint(pixels * (255 / _WIDE_RANGE[image.mode])).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if image.mode == "F":
        pixels = np.asarray(image, dtype=np.float64)
        if not np.isfinite(pixels).all() or pixels.min() < 0 or pixels.max() > 1:
            raise ImageError(f"{label}: floating-point samples outside 0..1 have no defined brightness")
        return Image.fromarray(np.rint(pixels * 255).astype(np.uint8), "L").convert("RGB")
    has_alpha = image.mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in image.info
    if has_alpha:
        rgba = image.convert("RGBA")
        flat = Image.new("RGBA", rgba.size, (*TRANSPARENCY_BACKGROUND, 255))
        return Image.alpha_composite(flat, rgba).convert("RGB")
    return image.convert("RGB")


def image_hash(image: Image.Image) -> str:
    """A content hash of the decoded pixels: equal pictures share it whatever file they came from."""
    digest = hashlib.sha256()
    digest.update(f"{image.mode}:{image.width}x{image.height}:".encode())
    digest.update(image.tobytes())
    return digest.hexdigest()
