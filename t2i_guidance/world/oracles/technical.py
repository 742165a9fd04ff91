"""Technical quality: three no-reference degradation estimates, each expressed as an equivalent
degradation level 0..5 of the renderer's own scale (render.BLUR_SIGMA, NOISE_STD, and a residual table
measured at the levels of render.JPEG_QUALITY): blur from how much the gradient energy survives a
further known blur, noise from the median Laplacian response (flat regions dominate), JPEG from how far
pixels stray from the background-to-palette mixing lines per unit of edge.
Penalty = the worst level + a quarter of the others; score = 5 - 5 tanh(penalty / 5), about 5 - penalty
for mild damage and never flat at 0, so even strong degradations stay ranked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from PIL import Image
from scipy import ndimage

from t2i_guidance.world.oracles.perception import noise_sigma, to_array, unmix
from t2i_guidance.world.render import BLUR_SIGMA, NOISE_STD


@dataclass
class TechnicalResult:
    score: float
    levels: dict[str, float]  # equivalent degradation level 0..5 per kind
    issues: list[str]


BLUR_PROBE_SIGMA = 1.5  # pixels of a 32-pixel canvas
SHARP_BASE_PIXELS = 0.3  # the edge softness of a clean (anti-aliased) render, in its own pixels
# Median compression residual (see _compression_residual) of the renderer's JPEG levels 0..5, measured on
# rendered scenes at 32 and 112 pixels.
JPEG_RESIDUAL = (0.03, 2.4, 2.75, 3.1, 3.65, 4.5)


def _gradient_energy(pixels: np.ndarray) -> float:
    # Summed over colour channels: a purple object on grey has almost no contrast in the channel mean.
    return float((np.diff(pixels, axis=0) ** 2).sum() + (np.diff(pixels, axis=1) ** 2).sum())


def _blur_sigma(pixels: np.ndarray) -> float:
    """Edge blur in pixels of a 32-pixel canvas: a step blurred by s keeps s/sqrt(s^2+p^2) of its energy
    under a further blur p, so the surviving fraction gives s regardless of contrast and edge length."""
    scale = pixels.shape[0] / 32.0
    energy = _gradient_energy(pixels)
    if energy < 1e-6:
        return 0.0
    probe = BLUR_PROBE_SIGMA * scale
    reblurred = ndimage.gaussian_filter(pixels, (probe, probe, 0), mode="nearest")
    kept = min(_gradient_energy(reblurred) / energy, 0.999)
    return probe * kept / math.sqrt(1 - kept**2) / scale


def _compression_residual(pixels: np.ndarray) -> float:
    """How far pixels stray from the background-to-palette mixing lines, per unit of edge.

    A clean or blurred render only mixes the background with one palette colour (on the line); JPEG's
    quantisation and chroma subsampling ring off it near edges, so the residual energy is divided by
    the total edge contrast to not depend on how many objects or edges the picture has.
    """
    residual = unmix(pixels)[2].min(axis=-1)
    edges = np.linalg.norm(np.diff(pixels, axis=0), axis=-1).sum() + np.linalg.norm(np.diff(pixels, axis=1), axis=-1).sum()
    return float(math.sqrt((residual**2).sum() / max(edges, 1.0)))


def degradation_levels(image: Image.Image | np.ndarray) -> dict[str, float]:
    """Equivalent degradation level 0..5 for blur, noise and jpeg (0 = not seen)."""
    pixels = to_array(image)
    sigma, base = _blur_sigma(pixels), SHARP_BASE_PIXELS * 32.0 / pixels.shape[0]
    blur_only = math.sqrt(max(sigma**2 - base**2, 0.0))
    return {
        "blur": float(np.interp(blur_only, BLUR_SIGMA, range(6))),
        "noise": float(np.interp(noise_sigma(pixels), NOISE_STD, range(6))),
        "jpeg": float(np.interp(_compression_residual(pixels), JPEG_RESIDUAL, range(6))),
    }


ISSUE_WORDS = {
    "blur": ("the edges are slightly soft", "the edges are blurred", "the whole image is heavily blurred"),
    "noise": ("there is slight grain", "the image is noisy", "the image is covered in heavy noise"),
    "jpeg": ("there are faint compression blocks", "there are compression artefacts",
             "strong blocky compression artefacts"),
}


def technical_score(image: Image.Image | np.ndarray) -> TechnicalResult:
    levels = degradation_levels(image)
    ordered = sorted(levels.values(), reverse=True)
    penalty = ordered[0] + 0.25 * (ordered[1] + ordered[2])
    score = 5.0 - 5.0 * math.tanh(penalty / 5.0)  # ~linear for mild damage, never saturates at 0
    issues = []
    for kind, level in levels.items():
        if kind == "jpeg" and levels["noise"] >= level:  # noise also leaves the mixing lines
            continue
        if level >= 0.75:
            words = ISSUE_WORDS[kind]
            issues.append(words[0] if level < 2 else words[1] if level < 3.5 else words[2])
    return TechnicalResult(score, levels, issues)

