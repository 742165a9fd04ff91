"""Training tables that hold image PATHS, decoded one sample at a time when a batch is built.

A `datasets` column typed `Image(mode="RGB")` stores only the path (bytes stay null) and decodes on
access, so every rank of a multi-GPU run keeps a few bytes per record instead of the pictures, and the
decoded image is always RGB whatever the file's mode.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image


def lazy_image_table(rows: list[dict], image_column: str, many: bool = False):
    """A `datasets.Dataset` from rows whose `image_column` holds a path (or a list of paths when `many`)."""
    from datasets import Dataset, List
    from datasets import Image as ImageFeature

    feature = ImageFeature(mode="RGB")
    table = Dataset.from_list(rows)
    return table.cast_column(image_column, List(feature) if many else feature)


def image_size(path: str | Path) -> tuple[int, int]:
    """(width, height) from the file header, without decoding the pixels."""
    with Image.open(path) as image:
        return image.size


def image_tokens(processor, width: int, height: int) -> int:
    """How many tokens a Qwen2-VL-style processor turns a width x height picture into (after merging)."""
    image_processor = processor.image_processor
    patches = image_processor.get_number_of_image_patches(height, width, {})
    return patches // (getattr(image_processor, "merge_size", 1) ** 2)
