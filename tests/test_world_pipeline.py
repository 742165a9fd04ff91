"""The world's diffusion pipeline behaves like any diffusers pipeline (tested on untrained weights)."""

import numpy as np
import pytest
import torch

from t2i_guidance.generator import GenerationSettings, Generator
from t2i_guidance.world.pipeline import WorldDiffusionPipeline

PROMPT = "a red circle above a small blue square on a white background"
SMALL = (8, 16, 16)  # the shipped architecture with narrower blocks, so tests stay fast


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    path = tmp_path_factory.mktemp("world") / "generator"
    WorldDiffusionPipeline.from_config_untrained(seed=1, block_out_channels=SMALL).save_pretrained(path)
    return path


def pixels(image):
    return np.asarray(image, dtype=np.int16)


def test_saves_loads_and_draws_the_same_images(saved):
    original = WorldDiffusionPipeline.from_config_untrained(seed=1, block_out_channels=SMALL)
    loaded = WorldDiffusionPipeline.from_pretrained(saved)
    kwargs = dict(num_inference_steps=2, generator=torch.Generator().manual_seed(0))
    a = original(PROMPT, **kwargs).images[0]
    kwargs["generator"] = torch.Generator().manual_seed(0)
    b = loaded(PROMPT, **kwargs).images[0]
    assert a.size == (32, 32) and np.array_equal(pixels(a), pixels(b))


def test_each_image_depends_only_on_its_own_generator(saved):
    generator = Generator.from_pretrained(str(saved), device="cpu")
    settings = GenerationSettings(num_inference_steps=3, guidance_scale=3.0)
    batched = generator.generate(PROMPT, [5, 6, 7, 8], settings, batch_size=4)
    alone = generator.generate(PROMPT, [7], settings, first_index=2)
    in_pairs = generator.generate(PROMPT, [5, 6, 7, 8], settings, batch_size=2)
    assert alone[0].id == batched[2].id
    # Batched matmuls round differently from single ones: allow 2/255.
    assert np.abs(pixels(alone[0].image) - pixels(batched[2].image)).max() <= 2
    for x, y in zip(batched, in_pairs, strict=True):
        assert np.abs(pixels(x.image) - pixels(y.image)).max() <= 2
    assert np.abs(pixels(batched[0].image) - pixels(batched[1].image)).max() > 20


def test_guidance_costs_two_evaluations_per_step_in_one_forward(saved):
    pipe = WorldDiffusionPipeline.from_pretrained(saved)
    calls = []
    handle = pipe.unet.register_forward_pre_hook(lambda m, a: calls.append(a[0].shape[0]))
    pipe(PROMPT, num_images_per_prompt=3, num_inference_steps=4, guidance_scale=3.0, output_type="pt")
    pipe(PROMPT, num_images_per_prompt=3, num_inference_steps=4, guidance_scale=1.0, output_type="pt")
    handle.remove()
    assert calls == [6] * 4 + [3] * 4


def test_callback_and_latents_and_output_types(saved):
    pipe = WorldDiffusionPipeline.from_pretrained(saved)
    seen = []

    def callback(p, i, t, tensors):
        seen.append(i)
        return {"latents": tensors["latents"]}

    latents = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(3))
    out = pipe([PROMPT, "a green triangle on the left"], latents=latents, num_inference_steps=3,
               output_type="np", callback_on_step_end=callback)
    assert seen == [0, 1, 2]
    assert out.images.shape == (2, 32, 32, 3) and out.images.min() >= 0 and out.images.max() <= 1
    again = pipe([PROMPT, "a green triangle on the left"], latents=latents, num_inference_steps=3, output_type="np")
    assert np.allclose(out.images, again.images)


def test_wrong_size_or_generator_count_is_refused(saved):
    pipe = WorldDiffusionPipeline.from_pretrained(saved)
    with pytest.raises(ValueError, match="32x32"):
        pipe(PROMPT, height=64, width=64, num_inference_steps=1)
    with pytest.raises(ValueError, match="2 generators for 3 images"):
        pipe(PROMPT, num_images_per_prompt=3, generator=[torch.Generator(), torch.Generator()])
