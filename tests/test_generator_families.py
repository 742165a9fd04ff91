"""The generator adapter works with real diffusers pipelines of five families (tiny, built offline).

For SD 1.5, SDXL, SD3, FLUX and SANA: a saved pipeline loads back through `Generator.from_pretrained`,
a seed reproduces its image, a candidate regenerated alone or in batches of one matches the batched run,
and each candidate's NFE count is what the denoiser actually ran.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from t2i_guidance.generator import Candidate, GenerationSettings, Generator
from tests.tiny_pipelines import FAMILIES, TINY_IMAGE_SIZE, build_tiny_pipeline, save_tiny_pipeline

PROMPT = "a red circle above a small blue square on a white background"
SEEDS = [11, 12, 13, 14]
STEPS = 2
SETTINGS = GenerationSettings(
    num_inference_steps=STEPS,
    guidance_scale=3.0,
    height=TINY_IMAGE_SIZE,
    width=TINY_IMAGE_SIZE,
    negative_prompt="blurry, low quality",
)

PIPELINE_CLASS = {
    "sd15": "StableDiffusionPipeline",
    "sdxl": "StableDiffusionXLPipeline",
    "sd3": "StableDiffusion3Pipeline",
    "flux": "FluxPipeline",
    "sana": "SanaPipeline",
}

# Denoiser rows per candidate per step at guidance 3: classifier-free guidance doubles them, except FLUX,
# whose guidance_scale feeds a distilled-guidance embedding (absent here) and whose negative prompt only
# acts with true_cfg_scale > 1, which the adapter does not pass.
ROWS_PER_CANDIDATE_STEP = {"sd15": 2, "sdxl": 2, "sd3": 2, "flux": 1, "sana": 2}

# Batching changes the shapes of the matmuls, so their float sums are reduced in another order: a
# candidate's pixels may differ by a rounding step or two between batch sizes, never by more.
BATCH_TOLERANCE = 2


class DenoiserRowCounter:
    """The test's own count of denoiser calls and rows, taken after each forward returns."""

    def __init__(self, denoiser: torch.nn.Module) -> None:
        self.denoiser, self.calls, self.rows = denoiser, 0, 0

    def _hook(self, module: torch.nn.Module, args: tuple, kwargs: dict, output: object) -> None:
        sample = args[0] if args else kwargs.get("sample", kwargs.get("hidden_states"))
        self.calls += 1
        self.rows += sample.shape[0]

    def __enter__(self) -> DenoiserRowCounter:
        self._handle = self.denoiser.register_forward_hook(self._hook, with_kwargs=True)
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.remove()


def pixels(candidate: Candidate) -> np.ndarray:
    return np.asarray(candidate.image.convert("RGB"), dtype=np.int16)


def max_pixel_difference(a: Candidate, b: Candidate) -> int:
    return int(np.abs(pixels(a) - pixels(b)).max())


@pytest.fixture(scope="module", params=FAMILIES)
def family(request: pytest.FixtureRequest) -> str:
    return request.param


@pytest.fixture(scope="module")
def loaded(family: str, tmp_path_factory: pytest.TempPathFactory) -> Generator:
    path = save_tiny_pipeline(family, tmp_path_factory.mktemp(family))
    return Generator.from_pretrained(str(path), device="cpu")


@pytest.fixture(scope="module")
def batched(loaded: Generator) -> tuple[list[Candidate], DenoiserRowCounter]:
    with DenoiserRowCounter(loaded.denoiser) as counter:
        candidates = loaded.generate(PROMPT, SEEDS, SETTINGS, batch_size=len(SEEDS))
    return candidates, counter


def test_saved_pipeline_loads_through_the_adapter_and_generates(family, loaded, batched):
    candidates, _ = batched
    assert type(loaded.pipeline).__name__ == PIPELINE_CLASS[family]
    assert loaded.device == "cpu"
    assert [c.seed for c in candidates] == SEEDS
    assert [c.index for c in candidates] == list(range(len(SEEDS)))
    assert len({c.id for c in candidates}) == len(SEEDS)
    for candidate in candidates:
        assert candidate.prompt == PROMPT
        assert candidate.image.size == (TINY_IMAGE_SIZE, TINY_IMAGE_SIZE)
        assert candidate.settings["num_inference_steps"] == STEPS
    # Different seeds must give different pictures, or the comparisons below would prove nothing.
    assert max_pixel_difference(candidates[0], candidates[1]) > 10 * BATCH_TOLERANCE


def test_loaded_pipeline_matches_the_one_that_was_saved(family, batched):
    # Weights, configs and the locally trained tokenizers all survive save_pretrained/from_pretrained.
    in_memory = Generator(build_tiny_pipeline(family), device="cpu")
    fresh = in_memory.generate(PROMPT, SEEDS, SETTINGS)
    for before, after in zip(fresh, batched[0], strict=True):
        assert np.array_equal(pixels(before), pixels(after))


def test_same_seed_gives_the_same_image(loaded, batched):
    again = loaded.generate(PROMPT, SEEDS, SETTINGS, batch_size=len(SEEDS))
    for first, second in zip(batched[0], again, strict=True):
        assert np.array_equal(pixels(first), pixels(second))


def test_candidate_regenerated_alone_equals_its_batched_self(loaded, batched):
    candidates, _ = batched
    k = len(SEEDS) - 1
    (alone,) = loaded.generate(PROMPT, [SEEDS[k]], SETTINGS, first_index=k)
    assert (alone.id, alone.seed) == (candidates[k].id, candidates[k].seed)
    assert max_pixel_difference(alone, candidates[k]) <= BATCH_TOLERANCE


def test_batch_size_does_not_change_the_images(loaded, batched):
    one_by_one = loaded.generate(PROMPT, SEEDS, SETTINGS, batch_size=1)
    assert [c.seed for c in one_by_one] == SEEDS
    for single, in_batch in zip(one_by_one, batched[0], strict=True):
        assert max_pixel_difference(single, in_batch) <= BATCH_TOLERANCE


def test_each_candidate_records_the_denoiser_evaluations_that_ran(family, loaded, batched):
    candidates, counter = batched
    assert loaded.pipeline.num_timesteps == STEPS  # these schedulers take one denoiser call per step
    assert counter.calls == STEPS  # one batched call per step: guidance rows ride in the same call
    observed_per_candidate = counter.rows / len(candidates)
    assert observed_per_candidate == STEPS * ROWS_PER_CANDIDATE_STEP[family]
    for candidate in candidates:
        assert candidate.nfes > 0
        assert candidate.nfes == observed_per_candidate
