"""The memory planner on CPU: model sizes and GPU sizes in, a plan out; sizes read without loading."""

from __future__ import annotations

import json

import pytest
import torch
from safetensors.torch import save_file

from t2i_guidance.memory_plan import ScorerBackend, cpu_warning, loop_shape, plan_for_run, plan_memory
from t2i_guidance.model_sizes import GB, ModelSize, model_size

PRESET_GENERATORS = {
    "sdxl-turbo": "stabilityai/sdxl-turbo",
    "flux-schnell": "black-forest-labs/FLUX.1-schnell",
    "sana": "Efficient-Large-Model/Sana_1600M_1024px_diffusers",
}
SCORER_7B = "yeeeeeyy/OmniQuality-R"


def known(name: str, role: str) -> ModelSize:
    size = model_size(name, role=role)
    assert size.source == "known table (not read)"  # the test machine has no hub cache of these
    return size


def gpus(total_gb: int, count: int = 1) -> list[tuple[int, int]]:
    return [(total_gb * GB, total_gb * GB)] * count


# (preset, GPU GB, GPU count) -> strategy, transformers backend, best-of-N.
EXPECTED = {
    ("sdxl-turbo", 24, 1): "phases", ("flux-schnell", 24, 1): "does-not-fit", ("sana", 24, 1): "phases",
    ("sdxl-turbo", 48, 1): "resident", ("flux-schnell", 48, 1): "phases", ("sana", 48, 1): "resident",
    ("sdxl-turbo", 80, 1): "resident", ("flux-schnell", 80, 1): "resident", ("sana", 80, 1): "resident",
    ("sdxl-turbo", 141, 1): "resident", ("flux-schnell", 141, 1): "resident", ("sana", 141, 1): "resident",
    ("sdxl-turbo", 24, 2): "scorer-on-second-gpu", ("flux-schnell", 24, 2): "does-not-fit",
    ("sana", 24, 2): "scorer-on-second-gpu",
    ("sdxl-turbo", 48, 2): "resident", ("flux-schnell", 48, 2): "scorer-on-second-gpu", ("sana", 48, 2): "resident",
}


@pytest.mark.parametrize(("preset", "gpu_gb", "count"), sorted(EXPECTED))
def test_each_preset_on_each_gpu(preset, gpu_gb, count):
    plan = plan_memory(known(PRESET_GENERATORS[preset], "generator"), known(SCORER_7B, "scorer"),
                       gpus(gpu_gb, count), ScorerBackend("transformers"), loop="one-pass")
    assert plan.strategy == EXPECTED[(preset, gpu_gb, count)]
    assert plan.fits == (plan.strategy != "does-not-fit")
    if plan.fits:
        assert all(peak <= gpu_gb * GB for peak in plan.peak_bytes.values())
        assert "expected peak on cuda:0" in plan.describe()


def test_flux_on_24_gb_says_its_transformer_alone_is_too_big():
    plan = plan_memory(known(PRESET_GENERATORS["flux-schnell"], "generator"), known(SCORER_7B, "scorer"), gpus(24))
    assert not plan.fits
    assert "23.8 GB" in plan.reason and "CPU offload" in plan.reason
    assert plan.describe().startswith("memory plan: does not fit")


def test_best_of_n_frees_the_generator_while_alternating_loops_move_it():
    generator, scorer = known(PRESET_GENERATORS["sdxl-turbo"], "generator"), known(SCORER_7B, "scorer")
    one_pass = plan_memory(generator, scorer, gpus(24), loop="one-pass")
    assert (one_pass.strategy, one_pass.alternate) == ("phases", "free the generator before scoring")
    alternating = plan_memory(generator, scorer, gpus(24), loop=loop_shape("particles"))
    assert (alternating.strategy, alternating.alternate) == ("phases", "move-to-cpu")
    assert alternating.peak_bytes["cuda:0"] < 24 * GB


def test_alternating_loops_prefer_offloading_the_generator_over_moving_the_scorer():
    generator = ModelSize("gen", 10 * GB, 4 * GB, 2 * GB, "test")
    scorer = ModelSize("scorer", 16 * GB, 16 * GB, 4 * GB, "test")
    assert plan_memory(generator, scorer, gpus(30), loop="one-pass").strategy == "phases"
    plan = plan_memory(generator, scorer, gpus(30), loop="alternating")
    assert (plan.strategy, plan.generator_cpu_offload, plan.alternate) == ("cpu-offload", True, None)


def test_offloaded_generator_in_phases_when_nothing_else_fits():
    generator = ModelSize("gen", 30 * GB, 20 * GB, 2 * GB, "test")
    scorer = ModelSize("scorer", 16 * GB, 16 * GB, 4 * GB, "test")
    plan = plan_memory(generator, scorer, gpus(32))
    assert (plan.strategy, plan.generator_cpu_offload) == ("cpu-offload+phases", True)


def test_vllm_share_chosen_to_leave_room_for_the_generator():
    generator, scorer = known(PRESET_GENERATORS["flux-schnell"], "generator"), known(SCORER_7B, "scorer")
    plan = plan_memory(generator, scorer, gpus(80), ScorerBackend("vllm"), loop="alternating")
    assert plan.strategy == "resident"
    assert plan.vllm_share * 80 * GB >= scorer.peak_bytes
    assert plan.peak_bytes["cuda:0"] <= 80 * GB
    assert "vLLM" in plan.describe()


def test_vllm_default_share_beside_flux_sleeps_between_phases():
    generator, scorer = known(PRESET_GENERATORS["flux-schnell"], "generator"), known(SCORER_7B, "scorer")
    plan = plan_memory(generator, scorer, gpus(80), ScorerBackend("vllm", vllm_share=0.85), loop="alternating")
    assert (plan.strategy, plan.alternate, plan.vllm_share) == ("vllm-sleep", "vllm-sleep", 0.85)


def test_vllm_share_too_small_for_the_scorer_does_not_fit():
    generator, scorer = known(PRESET_GENERATORS["sdxl-turbo"], "generator"), known(SCORER_7B, "scorer")
    plan = plan_memory(generator, scorer, gpus(48), ScorerBackend("vllm", vllm_share=0.2))
    assert not plan.fits and "share 0.20" in plan.reason


def test_generator_goes_to_the_gpu_with_more_free_memory():
    generator, scorer = known(PRESET_GENERATORS["flux-schnell"], "generator"), known(SCORER_7B, "scorer")
    plan = plan_memory(generator, scorer, [(24 * GB, 24 * GB), (48 * GB, 48 * GB)])
    assert (plan.generator_device, plan.scorer_device) == ("cuda:1", "cuda:0")


def test_no_gpu_plans_the_cpu():
    plan = plan_memory(known(PRESET_GENERATORS["sana"], "generator"), known(SCORER_7B, "scorer"), [])
    assert (plan.strategy, plan.generator_device, plan.scorer_device) == ("cpu", "cpu", "cpu")


def test_size_read_from_safetensors_headers(tmp_path):
    save_file({"a": torch.zeros(10, 10), "b": torch.zeros(5, dtype=torch.int64)}, tmp_path / "model.safetensors")
    size = model_size(str(tmp_path), role="scorer", working_bytes=0)
    assert size.weights_bytes == 100 * 2 + 5 * 8  # floats at bf16, integers as stored
    assert size.source.startswith("read from")


def test_size_from_the_shard_index_when_shards_are_absent(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"torch_dtype": "float32"}))
    index = {"metadata": {"total_size": 4000}, "weight_map": {"a": "model-00001-of-00002.safetensors"}}
    (tmp_path / "model.safetensors.index.json").write_text(json.dumps(index))
    assert model_size(str(tmp_path), role="scorer").weights_bytes == 2000


def test_size_of_a_diffusers_pipeline_folder_matches_its_parameters(tmp_path):
    from tests.tiny_pipelines import build_tiny_pipeline

    pipeline = build_tiny_pipeline("sdxl")
    pipeline.save_pretrained(tmp_path)
    parts = {name: module for name, module in pipeline.components.items() if isinstance(module, torch.nn.Module)}
    bf16_bytes = {name: sum(t.numel() * (2 if t.is_floating_point() else t.element_size())
                            for t in module.state_dict().values()) for name, module in parts.items()}
    size = model_size(str(tmp_path), role="generator")
    assert size.weights_bytes == sum(bf16_bytes.values())
    assert size.largest_component_bytes == max(bf16_bytes.values())


def test_unknown_model_size_is_an_error(tmp_path):
    with pytest.raises(ValueError, match="unknown"):
        model_size(str(tmp_path / "nothing"), role="generator")


def test_cpu_warning_is_one_loud_line_for_big_models_only():
    big, tiny = known(SCORER_7B, "scorer"), ModelSize("tiny", 10**7, 10**7, 0, "test")
    line = cpu_warning([tiny, big], "cpu")
    assert line.startswith("WARNING:") and "\n" not in line and SCORER_7B in line and "tiny" not in line
    assert cpu_warning([tiny], "cpu") is None
    assert cpu_warning([big], "cuda:0") is None


def test_plan_for_a_run_as_the_cli_names_it():
    plan = plan_for_run("stabilityai/sdxl-turbo", "omniquality-r", "particles", gpus=gpus(24))
    assert (plan.strategy, plan.alternate) == ("phases", "move-to-cpu")
    from t2i_guidance.registries import load_preset

    embedded = plan_for_run(load_preset("embedded").generator, "embedded", "best-of-n", gpus=gpus(24))
    assert embedded.strategy == "resident" and embedded.fits
