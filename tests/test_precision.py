"""Precision choice: bf16 only where the CPU multiplies bf16 natively, fp32 as the exact mode."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from reward_model.backends import compute_dtype, cpu_flags, normalise
from reward_model.backends.transformers_backend import scorer_dtype
from t2i_guidance.generator import (
    GenerationSettings,
    Generator,
    call_kwargs,
    cpu_autocast_dtype,
    weights_dtype,
)
from tests.tiny_pipelines import build_tiny_pipeline

CPUINFO_AMX = "processor\t: 0\nflags\t\t: fpu sse avx512f amx_tile amx_bf16 avx512_bf16\n"
CPUINFO_PLAIN = "processor\t: 0\nflags\t\t: fpu sse avx2\n"


def test_cpu_flags_are_read_from_cpuinfo():
    assert {"amx_bf16", "avx512_bf16"} <= cpu_flags(CPUINFO_AMX)
    assert "amx_bf16" not in cpu_flags(CPUINFO_PLAIN)
    assert cpu_flags("") == set()


def test_auto_takes_bf16_only_where_the_cpu_has_bf16_units():
    assert compute_dtype("auto", "cpu", fast_bf16=True) == torch.bfloat16
    assert compute_dtype("auto", "cpu", fast_bf16=False) == torch.float32
    assert compute_dtype("auto", "cuda") == torch.bfloat16
    assert compute_dtype(None, "cpu", fast_bf16=False) == torch.float32


def test_fp32_is_fp32_everywhere_and_torch_names_are_accepted():
    assert compute_dtype("fp32", "cpu", fast_bf16=True) == torch.float32
    assert compute_dtype("float32", "cuda") == torch.float32
    assert compute_dtype("bfloat16", "cpu", fast_bf16=True) == torch.bfloat16
    assert normalise("float16") == "fp16"


def test_bf16_on_a_cpu_without_bf16_units_warns():
    with pytest.warns(UserWarning, match="no bf16 matrix units"):
        assert compute_dtype("bf16", "cpu", fast_bf16=False) == torch.bfloat16


def test_unknown_precision_and_fp16_on_cpu_are_refused():
    with pytest.raises(ValueError, match="unknown precision 'int8'"):
        compute_dtype("int8", "cpu")
    with pytest.raises(ValueError, match="fp16 is for GPUs"):
        compute_dtype("fp16", "cpu", fast_bf16=True)


def test_generator_weights_stay_fp32_on_cpu_and_bf16_is_autocast():
    assert weights_dtype("cpu", "bf16") == torch.float32
    assert weights_dtype("cuda", "fp32") == torch.float32
    assert weights_dtype("cuda", None) == torch.bfloat16
    assert cpu_autocast_dtype("cpu", None) is None
    assert cpu_autocast_dtype("cpu", "fp32") is None
    assert cpu_autocast_dtype("cuda", "bf16") is None  # on a GPU the weights themselves are bf16


def test_scorer_auto_stays_fp32_on_cpu_and_bf16_only_when_asked():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert scorer_dtype(cpu, None) == torch.float32
    assert scorer_dtype(cpu, "auto") == torch.float32
    assert scorer_dtype(cuda, "auto") == torch.bfloat16
    assert scorer_dtype(cuda, "fp32") == torch.float32


def _denoiser_autocast(generator: Generator) -> list:
    """What autocast state the denoiser's forward ran under, per call."""
    seen = []
    generator.denoiser.register_forward_pre_hook(
        lambda module, args: seen.append(
            torch.get_autocast_dtype("cpu") if torch.is_autocast_enabled("cpu") else None
        )
    )
    generator.generate("a red circle", [0], GenerationSettings(num_inference_steps=2, guidance_scale=1.0))
    return seen


@pytest.mark.parametrize(("precision", "expected"), [("bf16", torch.bfloat16), ("fp32", None), (None, None)])
def test_the_denoiser_runs_under_bf16_autocast_only_in_bf16(precision, expected):
    generator = Generator(build_tiny_pipeline("sd15"), device="cpu", precision=precision)
    seen = _denoiser_autocast(generator)
    assert seen and all(state == expected for state in seen)


def _fresh_sd15():
    """A copy of the shared tiny pipeline in the layout a plain load gives (other tests' generators may
    have made the shared one channels-last)."""
    pipeline = copy.deepcopy(build_tiny_pipeline("sd15"))
    pipeline.unet.to(memory_format=torch.contiguous_format)
    return pipeline


def _conv_weights_channels_last(generator: Generator) -> bool:
    convs = [m for m in generator.denoiser.modules() if isinstance(m, torch.nn.Conv2d)]
    return bool(convs) and all(m.weight.is_contiguous(memory_format=torch.channels_last) and
                               not m.weight.is_contiguous() for m in convs if m.kernel_size != (1, 1))


@pytest.mark.parametrize(("precision", "expected"), [("fp32", True), (None, True), ("bf16", False)])
def test_a_cpu_unet_keeps_channels_last_weights_in_fp32_only(precision, expected):
    generator = Generator(_fresh_sd15(), device="cpu", precision=precision)
    assert _conv_weights_channels_last(generator) is expected


def test_channels_last_leaves_the_pixels_as_a_plain_pipeline_draws_them():
    """The exact mode's promise: the same seed gives the hand loop's pixels (to float rounding)."""
    settings = GenerationSettings(num_inference_steps=3, guidance_scale=2.0)
    ours = Generator(_fresh_sd15(), device="cpu", precision="fp32")
    plain = _fresh_sd15()
    plain.set_progress_bar_config(disable=True)
    assert _conv_weights_channels_last(ours)
    image = ours.generate("a red circle", [7], settings)[0].image
    with torch.inference_mode():
        expected = plain(prompt="a red circle", generator=torch.Generator("cpu").manual_seed(7), output_type="pil",
                         **call_kwargs(plain, settings)).images[0]
    difference = np.abs(np.asarray(image, dtype=int) - np.asarray(expected, dtype=int))
    assert difference.max() <= 1
