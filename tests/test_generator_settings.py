"""How settings reach each pipeline family: explicit sizes are honoured, unknown arguments refused."""

import pytest

from t2i_guidance.generator import GenerationSettings, Generator, call_kwargs
from tests.tiny_pipelines import build_tiny_pipeline


def test_sana_renders_at_the_requested_size_not_a_binned_one():
    pipeline = build_tiny_pipeline("sana")
    settings = GenerationSettings(2, guidance_scale=2.0, height=32, width=32)
    assert call_kwargs(pipeline, settings)["use_resolution_binning"] is False
    generator = Generator(pipeline, device="cpu")
    [candidate] = generator.generate("a red circle", [0], settings)
    assert candidate.image.size == (32, 32)


def test_flux_true_cfg_through_extra_settings_doubles_the_evaluations():
    generator = Generator(build_tiny_pipeline("flux"), device="cpu")
    plain = GenerationSettings(2, height=32, width=32)
    true_cfg = GenerationSettings(2, height=32, width=32, negative_prompt="blurry", extra={"true_cfg_scale": 2.0})
    [a] = generator.generate("a red circle", [0], plain)
    [b] = generator.generate("a red circle", [0], true_cfg)
    assert a.nfes == 2 and b.nfes == 4


def test_an_argument_the_pipeline_does_not_take_is_refused_by_name():
    pipeline = build_tiny_pipeline("sd15")
    with pytest.raises(ValueError, match="StableDiffusionPipeline does not take true_cfg_scale"):
        call_kwargs(pipeline, GenerationSettings(2, extra={"true_cfg_scale": 2.0}))
