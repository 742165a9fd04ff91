"""How much memory a model needs, read without loading it: safetensors headers, a shard index, the local
hub cache, or a table of the presets' hub models (marked as such), plus an estimate of working memory."""

from __future__ import annotations

import json
import math
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

GB = 10**9
# Working memory beyond the weights (estimates): one 1024 px batch through the denoiser and the VAE decode;
# the scorer's activations and KV cache for 16 requests of up to 4096 new tokens of a 7B model.
GENERATOR_WORKING_BYTES = 3 * GB
SCORER_WORKING_BYTES = 4 * GB


@dataclass(frozen=True)
class ModelSize:
    """A model's memory needs in bytes, at the dtype it will run in."""

    name: str
    weights_bytes: int
    largest_component_bytes: int  # what diffusers' model CPU offload keeps on the GPU at once
    working_bytes: int
    source: str  # where the numbers come from: a file read, or "known table (not read)"

    @property
    def peak_bytes(self) -> int:
        return self.weights_bytes + self.working_bytes

    @property
    def offloaded_peak_bytes(self) -> int:
        return self.largest_component_bytes + self.working_bytes


# bf16 bytes of the presets' hub models (parameter counts from their model cards times two), used when the
# weights are not on this machine: (weights, largest component).
KNOWN_SIZES: dict[str, tuple[int, int]] = {
    "stabilityai/sdxl-turbo": (int(6.9 * GB), int(5.1 * GB)),  # UNet 2.6B + two CLIP text encoders + VAE
    "black-forest-labs/FLUX.1-schnell": (int(33.7 * GB), int(23.8 * GB)),  # transformer 11.9B + T5-XXL 4.8B
    "Efficient-Large-Model/Sana_1600M_1024px_diffusers": (int(9.0 * GB), int(5.2 * GB)),  # Gemma-2 2B largest
    "yeeeeeyy/OmniQuality-R": (int(16.6 * GB), int(16.6 * GB)),  # Qwen2.5-VL-7B, 8.3B parameters
    "Qwen/Qwen2.5-VL-7B-Instruct": (int(16.6 * GB), int(16.6 * GB)),
    "Qwen/Qwen2.5-VL-72B-Instruct": (int(146.8 * GB), int(146.8 * GB)),  # 73.4B parameters
}
_FLOAT_DTYPES = {"F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2"}
_DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "F8_E4M3": 1, "F8_E5M2": 1, "I64": 8, "I32": 4,
                "I16": 2, "I8": 1, "U8": 1, "BOOL": 1}
_CONFIG_DTYPE_BYTES = {"float32": 4, "float16": 2, "bfloat16": 2}


def model_size(
    name_or_path: str, role: Literal["generator", "scorer"], dtype_bytes: int = 2, working_bytes: int | None = None
) -> ModelSize:
    """A model's size at `dtype_bytes` per floating-point weight, read without loading it: from a local
    directory (a diffusers pipeline folder or a transformers model folder), from the local hub cache, or
    from KNOWN_SIZES. Raises ValueError when none of these knows the model."""
    working = working_bytes if working_bytes is not None else (
        GENERATOR_WORKING_BYTES if role == "generator" else SCORER_WORKING_BYTES)
    folder = Path(name_or_path).expanduser()
    if not folder.is_dir():
        folder = _cached_snapshot(name_or_path)
    if folder is not None:
        components = _component_sizes(folder, dtype_bytes)
        if components:
            return ModelSize(name_or_path, sum(components.values()), max(components.values()), working,
                             f"read from {folder.name}/ (safetensors headers)")
    if name_or_path in KNOWN_SIZES:
        weights, largest = KNOWN_SIZES[name_or_path]
        return ModelSize(name_or_path, weights * dtype_bytes // 2, largest * dtype_bytes // 2, working,
                         "known table (not read)")
    raise ValueError(f"size of {name_or_path!r} unknown: not a local model folder, not in the hub cache, "
                     "not a known preset model")


def _cached_snapshot(repo_id: str) -> Path | None:
    """The local hub cache's folder of `repo_id`, or None (never downloads)."""
    if "/" not in repo_id:
        return None
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id, local_files_only=True))
    except Exception:  # noqa: BLE001 - not cached, or not a valid id: fall back to the table
        return None


def _component_sizes(folder: Path, dtype_bytes: int) -> dict[str, int]:
    """Bytes per component: the sub-folders a diffusers model_index.json names, or the folder itself."""
    index = folder / "model_index.json"
    if index.is_file():
        names = [key for key, value in json.loads(index.read_text()).items()
                 if isinstance(value, list) and (folder / key).is_dir()]
        sizes = {name: _weights_bytes(folder / name, dtype_bytes) for name in names}
        return {name: size for name, size in sizes.items() if size}
    size = _weights_bytes(folder, dtype_bytes)
    return {folder.name: size} if size else {}


def _weights_bytes(folder: Path, dtype_bytes: int) -> int:
    """Weight bytes of one model folder at `dtype_bytes` per float (integers keep their size)."""
    files = sorted(folder.glob("*.safetensors"))
    if files:
        return sum(_safetensors_bytes(file, dtype_bytes) for file in files)
    for index in folder.glob("*.safetensors.index.json"):  # shards not present: the index's total
        total = json.loads(index.read_text()).get("metadata", {}).get("total_size")
        if total:
            return int(total) * dtype_bytes // _stored_dtype_bytes(folder)
    return 0


def _stored_dtype_bytes(folder: Path) -> int:
    config = folder / "config.json"
    if config.is_file():
        data = json.loads(config.read_text())
        return _CONFIG_DTYPE_BYTES.get(str(data.get("torch_dtype") or data.get("dtype")), 4)
    return 4


def _safetensors_bytes(path: Path, dtype_bytes: int) -> int:
    """From the file's JSON header only: 8 bytes of header length, then the header."""
    with path.open("rb") as handle:
        (length,) = struct.unpack("<Q", handle.read(8))
        header = json.loads(handle.read(length))
    total = 0
    for key, tensor in header.items():
        if key == "__metadata__":
            continue
        count = math.prod(tensor["shape"])
        dtype = tensor["dtype"]
        total += count * (dtype_bytes if dtype in _FLOAT_DTYPES else _DTYPE_BYTES.get(dtype, 4))
    return total
