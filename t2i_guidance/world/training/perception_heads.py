"""The world base VLM's perception heads (training only, never shipped): per merged visual token the
colour, shape and size of the object whose centre falls there and the token's own row and column; per
picture the background, each kind of damage, and how many objects and stray blobs. Their targets are the
oracles' reading of the picture, which is what the scorer will be held to."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from t2i_guidance.world.oracles import COLOUR_NAMES, degradation_levels, observe
from t2i_guidance.world.scene import BACKGROUNDS, SHAPES

DEFAULT_GRID = 8  # 224 px: 16 x 16 patches of 14, merged 2 x 2


def cell_heads(grid: int) -> dict[str, int]:
    # "row" / "col": each token names its own place, so position is in the token's content, where the
    # language model reads it directly (rotary positions alone only give it offsets).
    return {"colour": len(COLOUR_NAMES) + 1, "shape": len(SHAPES) + 1, "size": 3, "row": grid, "col": grid}


PICTURE_HEADS = {"background": len(BACKGROUNDS), "blur": 6, "noise": 6, "jpeg": 6, "objects": 4, "strays": 4}


def perception_labels(image: np.ndarray, grid: int = DEFAULT_GRID) -> dict[str, np.ndarray]:
    """Head targets from the oracles' reading of the picture (class 0 of a cell head = nothing there)."""
    seen = observe(image)
    cells = {name: np.zeros(grid * grid, dtype=np.int64) for name in ("colour", "shape", "size")}
    cells["row"], cells["col"] = np.divmod(np.arange(grid * grid, dtype=np.int64), grid)
    for obj in seen.objects:
        cell = min(grid - 1, int(obj.cy * grid)) * grid + min(grid - 1, int(obj.cx * grid))
        if cells["colour"][cell]:  # two centres in one cell: keep the larger object
            continue
        cells["colour"][cell] = COLOUR_NAMES.index(obj.colour) + 1
        cells["shape"][cell] = SHAPES.index(obj.shape) + 1
        cells["size"][cell] = 1 if obj.size == "small" else 2
    levels = degradation_levels(image)
    picture = {
        "background": list(BACKGROUNDS).index(seen.background),
        **{kind: min(5, int(round(levels[kind]))) for kind in ("blur", "noise", "jpeg")},
        "objects": min(3, len(seen.objects)),
        "strays": min(3, seen.strays),
    }
    return cells | {name: np.array(value, dtype=np.int64) for name, value in picture.items()}


class PerceptionHeads(nn.Module):
    """Linear read-outs of the vision tower's merged tokens (training only; never shipped)."""

    def __init__(self, hidden: int, grid: int = DEFAULT_GRID):
        super().__init__()
        self.cell = nn.ModuleDict({name: nn.Linear(hidden, n) for name, n in cell_heads(grid).items()})
        self.picture = nn.ModuleDict({name: nn.Linear(hidden, n) for name, n in PICTURE_HEADS.items()})

    def loss(self, tokens: torch.Tensor, targets: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict]:
        """tokens (B, grid*grid, hidden) -> summed cross-entropy and per-head accuracy.

        An 8 x 8 grid holds one or two objects among 64 cells: averaged over every cell, "nothing here" is
        right 97 % of the time and the heads learn little else (the 2026-12-03 base read the shape of 15 %
        of its object cells). So the colour head's empty and object cells count half each, and shape and
        size are scored on the object cells only."""
        total, accuracy = tokens.new_zeros(()), {}
        pooled = tokens.mean(dim=1)
        occupied = targets["colour"] > 0
        for name, head in self.cell.items():
            logits, target = head(tokens), targets[name]
            if name in ("row", "col"):
                total = total + nn.functional.cross_entropy(logits.flatten(0, 1), target.flatten())
                accuracy[name] = (logits.argmax(-1) == target).float().mean().item()
                continue
            on_objects = _object_cell_loss(logits[occupied], target[occupied])
            if name == "colour":
                empty = _object_cell_loss(logits[~occupied], target[~occupied])
                total = total + 0.5 * (on_objects + empty)
            else:
                total = total + on_objects
            hits = (logits.argmax(-1) == target)[occupied]
            accuracy[name] = hits.float().mean().item() if hits.numel() else float("nan")
        for name, head in self.picture.items():
            logits = head(pooled)
            total = total + nn.functional.cross_entropy(logits, targets[name])
            accuracy[name] = (logits.argmax(-1) == targets[name]).float().mean().item()
        return total, accuracy


def _object_cell_loss(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over the selected cells; 0 (still in the graph) when none is selected."""
    if target.numel() == 0:
        return logits.sum() * 0.0
    return nn.functional.cross_entropy(logits, target)


class TowerTap:
    """Keeps the vision tower's merged output of the last forward (raster order over the grid)."""

    def __init__(self, model):
        self.tokens = None
        model.model.visual.register_forward_hook(self._keep)

    def _keep(self, module, args, output) -> None:
        self.tokens = output.pooler_output
