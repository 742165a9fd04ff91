import random

import pytest
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from reward_model.grpo import (
    OmniGRPOConfig,
    OmniGRPOTrainer,
    batch_entropy_mask,
    build_grpo_dataset,
    normalise_gate_to_gated_tokens,
    per_response_entropy_mask,
    std_filter_keep,
)
from tests.train_support import make_data, make_tiny_model


def test_std_filter_drops_exactly_the_zero_variance_groups():
    rewards = torch.tensor([
        0.3, 0.3, 0.3, 0.3,          # constant -> dropped
        0.1, 0.9, 0.5, 0.2,          # varied -> kept
        0.0, 0.0, 0.0, 0.0,          # all failed -> dropped
        0.5, 0.5005, 0.5, 0.5,       # std 0.00025 <= 0.001 -> dropped
        0.5, 0.504, 0.5, 0.5,        # std 0.002 > 0.001 -> kept
    ])
    keep = std_filter_keep(rewards, num_generations=4, threshold=0.001)
    assert keep.tolist() == [False] * 4 + [True] * 4 + [False] * 8 + [True] * 4


def test_std_filter_drops_a_group_whose_std_equals_the_threshold():
    from trl.trainer.utils import nanstd

    rewards = torch.tensor([0.2, 0.4, 0.6, 0.8, 0.2, 0.4, 0.6, 0.9])
    at_threshold = float(nanstd(rewards[:4].view(1, 4), dim=1))  # std of the first group, exactly
    keep = std_filter_keep(rewards, num_generations=4, threshold=at_threshold)
    assert keep.tolist() == [False] * 4 + [True] * 4  # "std <= threshold is dropped": equality included


def test_std_filter_at_threshold_zero_still_drops_constant_groups():
    rewards = torch.tensor([0.7, 0.7, 0.7, 0.7, 0.0, 0.0, 0.0, 0.0, 0.7, 0.7, 0.7, 0.701])
    keep = std_filter_keep(rewards, num_generations=4, threshold=0.0)
    assert keep.tolist() == [False] * 8 + [True] * 4  # a constant group carries no signal at any threshold


def test_per_response_gate_rounds_k_up_where_ceil_and_round_differ():
    for valid, expected in ((12, 3), (7, 2), (6, 2), (3, 1)):  # 2.4, 1.4, 1.2, 0.6 -> ceil, never round
        entropies = torch.arange(valid, dtype=torch.float).flip(0).unsqueeze(0)  # token 0 is the most unsure
        gate = per_response_entropy_mask(entropies, torch.ones(1, valid), rho=0.2)
        assert gate[0].nonzero().flatten().tolist() == list(range(expected)), valid


def test_per_response_gating_keeps_the_top_rho_of_each_response():
    entropies = torch.tensor([[0.1, 0.9, 0.5, 0.7, 0.3, 0.2, 0.8, 0.4, 0.6, 1.0],
                              [2.0, 0.1, 0.2, 9.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]])
    mask = torch.ones_like(entropies)
    mask[1, 3:] = 0  # a 3-token response: the high padding entropy must never be picked
    gate = per_response_entropy_mask(entropies, mask, rho=0.2)
    assert gate[0].nonzero().flatten().tolist() == [1, 9]  # ceil(0.2 * 10) = 2 highest
    assert gate[1].nonzero().flatten().tolist() == [0]  # ceil(0.2 * 3) = 1
    fifteen = torch.rand(1, 15)
    assert per_response_entropy_mask(fifteen, torch.ones(1, 15), 0.2).sum() == 3  # not 4 by rounding


def test_per_response_and_batch_rules_differ_when_entropy_levels_differ():
    torch.manual_seed(0)
    confident = torch.rand(1, 20) * 0.1  # a response with low entropy everywhere
    unsure = 2.0 + torch.rand(1, 20)
    entropies, mask = torch.cat([confident, unsure]), torch.ones(2, 20)
    per_response = per_response_entropy_mask(entropies, mask, 0.2)
    batch = batch_entropy_mask(entropies, mask, 0.2)
    assert per_response.sum(-1).tolist() == [4, 4]
    assert batch[0].sum() == 0 and batch[1].sum() == 8  # one threshold: only the unsure response counts
    assert not torch.equal(per_response, batch)


def test_batch_rule_keeps_tokens_at_the_quantile_and_never_padding():
    entropies = torch.tensor([[0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 50.0, 60.0]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1, 0, 0]])
    gate = batch_entropy_mask(entropies, mask, rho=0.2)
    # The 0.8 quantile of the six valid values is exactly 4.0: TRL's rule keeps entropy >= it. The padding's
    # high entropies neither count towards the quantile nor pass the gate.
    assert gate.tolist() == [[False] * 4 + [True, True, False, False]]
    empty = batch_entropy_mask(entropies, torch.zeros_like(mask), rho=0.2)
    assert empty.dtype == torch.bool and empty.shape == mask.shape and not empty.any()


def test_per_response_gate_ignores_rows_without_valid_tokens():
    entropies = torch.tensor([[9.0, 8.0, 7.0], [1.0, 2.0, 3.0]])
    mask = torch.tensor([[0, 0, 0], [1, 1, 1]])
    assert per_response_entropy_mask(entropies, mask, 0.2).tolist() == [[False] * 3, [False, False, True]]
    assert not per_response_entropy_mask(entropies, torch.zeros_like(mask), 0.2).any()
    assert per_response_entropy_mask(torch.zeros(0, 4), torch.zeros(0, 4), 0.2).shape == (0, 4)  # no rows


@pytest.fixture(scope="module")
def assets(tmp_path_factory):
    root = tmp_path_factory.mktemp("grpo")
    model_dir = make_tiny_model(root / "model")
    data = make_data(root / "data", n=12)
    return root, model_dir, data


def make_trainer(assets, rewards, **overrides):
    root, model_dir, data = assets
    settings = dict(output_dir=str(root / "out"), use_cpu=True, bf16=False, report_to="none", save_strategy="no",
                    per_device_train_batch_size=8, num_generations=4, max_completion_length=8, max_steps=2,
                    logging_steps=1, loss_type="grpo", learning_rate=1e-2, weight_decay=0.0, seed=0)
    settings.update(overrides)
    dataset = build_grpo_dataset(data["train"], split="train", limit=2)
    return OmniGRPOTrainer(model=AutoModelForImageTextToText.from_pretrained(model_dir),
                           processing_class=AutoProcessor.from_pretrained(model_dir), reward_funcs=rewards,
                           args=OmniGRPOConfig(**settings), train_dataset=dataset)


def test_gradient_flows_only_through_gated_tokens(assets):
    def probe(completions, **_):
        return [1.0] * len(completions)

    trainer = make_trainer(assets, [probe], top_entropy_quantile=0.2, gated_loss_normalization="valid")
    for rule in ("per_response", "batch"):
        trainer.args.entropy_gating = rule
        entropies = torch.cat([torch.rand(1, 10) * 0.1, 1.0 + torch.rand(1, 10)])
        completion_mask = torch.ones(2, 10, dtype=torch.long)
        completion_mask[0, 8:] = 0
        logps = (-torch.rand(2, 10)).requires_grad_()
        trainer._get_per_token_logps_and_entropies = lambda *a, **k: (logps, entropies, None)  # noqa: B023
        inputs = {"prompt_ids": torch.ones(2, 3, dtype=torch.long), "prompt_mask": torch.ones(2, 3, dtype=torch.long),
                  "completion_ids": torch.ones(2, 10, dtype=torch.long), "completion_mask": completion_mask,
                  "advantages": torch.tensor([1.0, -1.0]), "num_items_in_batch": torch.tensor(18.0)}
        trainer._compute_loss(trainer.model, inputs).backward()
        expected = (per_response_entropy_mask if rule == "per_response" else batch_entropy_mask)(
            entropies, completion_mask, 0.2)
        assert torch.equal(logps.grad != 0, expected), rule
    assert expected[0].sum() == 0  # the batch rule starves the confident response; per-response does not


class SpyTrainer(OmniGRPOTrainer):
    def _compute_loss(self, model, inputs):
        self.seen_advantages.append(inputs["advantages"].clone())
        return super()._compute_loss(model, inputs)


def test_dropped_groups_never_reach_the_forward_pass(assets):
    rng = random.Random(0)

    def probe(completions, label, **_):  # varied for the high-label prompt, constant for the other
        return [rng.random() if y >= 4.0 else 1.0 for y in label]

    root, model_dir, data = assets
    labels = [row["label"] for row in build_grpo_dataset(data["train"], split="train", limit=2)]
    assert min(labels) < 4.0 <= max(labels)
    trainer = make_trainer(assets, [probe], std_filter=True, std_filter_reward="probe")
    trainer.__class__ = SpyTrainer
    trainer.seen_advantages = []
    trainer.train()
    assert [len(a) for a in trainer.seen_advantages] == [4, 4]  # 8 rollouts per step, one group kept
    assert all(bool((a != 0).all()) for a in trainer.seen_advantages)
    dropped = [e["std_filter/frac_groups_dropped"] for e in trainer.state.log_history if "reward" in e]
    assert dropped == [0.5, 0.5]


def test_a_fully_dropped_batch_costs_no_forward_and_changes_no_weight(assets):
    def flat(completions, **_):
        return [0.25] * len(completions)

    trainer = make_trainer(assets, [flat], std_filter=True, std_filter_reward="flat")
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.__class__ = SpyTrainer
    trainer.seen_advantages = []
    trainer.train()
    assert trainer.seen_advantages == []
    assert all(torch.equal(before[n], p) for n, p in trainer.model.named_parameters())
    assert [e["std_filter/frac_groups_dropped"] for e in trainer.state.log_history if "reward" in e] == [1.0, 1.0]


def test_grpo_trains_saves_and_reloads(assets, tmp_path):
    rng = random.Random(1)

    def noisy(completions, **_):
        return [rng.random() for _ in completions]

    trainer = make_trainer(assets, [noisy], std_filter=True, std_filter_reward="noisy", top_entropy_quantile=0.2)
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    changed = [n for n, p in trainer.model.named_parameters() if not torch.equal(before[n], p)]
    assert changed  # the policy moved
    trainer.save_model(str(tmp_path / "saved"))
    reloaded = AutoModelForImageTextToText.from_pretrained(tmp_path / "saved")
    name = changed[0]
    assert torch.equal(dict(reloaded.named_parameters())[name], dict(trainer.model.named_parameters())[name])


def test_gate_weights_turn_a_valid_token_mean_into_a_gated_token_mean():
    gate = torch.tensor([[1, 1, 0, 0, 0], [1, 0, 0, 0, 0], [0, 0, 0, 0, 0]], dtype=torch.bool)
    mask = torch.tensor([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 1, 0, 0, 0]])
    loss = torch.tensor([[2.0, 4.0, 9.0, 9.0, 9.0], [6.0, 9.0, 9.0, 9.0, 9.0], [9.0] * 5])
    weights = normalise_gate_to_gated_tokens(gate, mask)
    per_response = (loss * weights * mask).sum(-1) / mask.sum(-1)
    assert per_response.tolist() == [3.0, 6.0, 0.0]  # the mean over gated tokens; nothing gated -> 0


def gated_gradient(trainer, logps_seed=0):
    generator = torch.Generator().manual_seed(logps_seed)
    entropies = torch.rand(2, 10, generator=generator)
    completion_mask = torch.ones(2, 10, dtype=torch.long)
    completion_mask[0, 5:] = 0
    logps = (-torch.rand(2, 10, generator=generator)).requires_grad_()
    trainer._get_per_token_logps_and_entropies = lambda *a, **k: (logps, entropies, None)
    inputs = {"prompt_ids": torch.ones(2, 3, dtype=torch.long), "prompt_mask": torch.ones(2, 3, dtype=torch.long),
              "completion_ids": torch.ones(2, 10, dtype=torch.long), "completion_mask": completion_mask,
              "advantages": torch.tensor([1.0, -1.0]), "num_items_in_batch": torch.tensor(15.0)}
    trainer._compute_loss(trainer.model, inputs).backward()
    return logps.grad


def test_release_normalisation_divides_by_gated_tokens_and_is_the_default(assets):
    def probe(completions, **_):
        return [1.0] * len(completions)

    trainer = make_trainer(assets, [probe], top_entropy_quantile=0.2, beta=0.0)
    assert trainer.args.gated_loss_normalization == "gated"
    gated = gated_gradient(trainer)
    trainer.args.gated_loss_normalization = "valid"
    valid = gated_gradient(trainer)
    assert torch.equal(gated != 0, valid != 0)  # same tokens carry the loss
    # 5 valid tokens, k = 1 gated; 10 valid, k = 2 gated: the gradient is n_valid / n_gated = 5x larger
    ratio = gated[valid != 0] / valid[valid != 0]
    assert torch.allclose(ratio, torch.full_like(ratio, 5.0))
    with pytest.raises(ValueError, match="per-response loss"):
        OmniGRPOConfig(output_dir="x", use_cpu=True, top_entropy_quantile=0.2, loss_type="dapo")


def test_a_window_with_every_group_filtered_skips_the_optimizer_step(assets):
    from transformers import TrainerCallback

    calls = {"n": 0}

    def signal_then_flat(completions, **_):  # rewards vary on the first generation only
        calls["n"] += 1
        return [random.random() if calls["n"] == 1 else 0.5 for _ in completions]

    snapshots = []

    class Snapshot(TrainerCallback):
        def on_pre_optimizer_step(self, args, state, control, model=None, **kwargs):
            # As under DDP, where padding rows give zero gradients rather than none at all
            for p in model.parameters():
                if p.grad is None:
                    p.grad = torch.zeros_like(p)

        def on_step_end(self, args, state, control, model=None, **kwargs):
            snapshots.append({n: p.detach().clone() for n, p in model.named_parameters()})

    trainer = make_trainer(assets, [signal_then_flat], std_filter=True, std_filter_reward="signal_then_flat",
                           max_steps=3)
    trainer.add_callback(Snapshot())
    before = {n: p.detach().clone() for n, p in trainer.model.named_parameters()}
    trainer.train()
    moved = lambda a, b: any(not torch.equal(a[n], b[n]) for n in a)  # noqa: E731
    assert moved(before, snapshots[0])  # step 1 had signal: Adam stepped
    # steps 2 and 3 had none: without the skip, Adam's first moment would still move every weight
    assert not moved(snapshots[0], snapshots[1]) and not moved(snapshots[1], snapshots[2])
    skipped = [e["std_filter/optimizer_step_skipped"] for e in trainer.state.log_history if "reward" in e]
    assert skipped == [0.0, 1.0, 1.0]


def test_release_batch_layout_in_the_7b_configs():
    from pathlib import Path

    from reward_model.train import load_config

    for name in ("7b_grpo_stage1.yaml", "7b_grpo_stage2.yaml"):
        (stage,) = load_config(Path(__file__).parents[1] / "reward_model" / "configs" / name)["grpo"]["stages"]
        args = stage["args"]
        gpus = 8
        completions = gpus * args["per_device_train_batch_size"] * args["steps_per_generation"]
        assert completions // args["num_generations"] == 64 and args["num_generations"] == 16  # 64 prompts x 16
        config = OmniGRPOConfig(output_dir="x", use_cpu=True, **{k: v for k, v in args.items() if k in (
            "per_device_train_batch_size", "gradient_accumulation_steps", "steps_per_generation",
            "num_generations", "save_strategy", "save_steps")})
        assert config.updates_per_generation == 16
        # Decided (see the config's comment): off, as in the release; the PPO ratio is taken against the
        # trainer's own recomputed log-probs, which TRL does only when a generation spans several steps.
        assert args["vllm_importance_sampling_correction"] is False
        assert args["steps_per_generation"] > args["gradient_accumulation_steps"]
        assert args["vllm_enable_sleep_mode"] is True and args["vllm_mode"] == "colocate"


def test_checkpoints_must_fall_on_generation_boundaries():
    common = dict(output_dir="x", use_cpu=True, per_device_train_batch_size=4, num_generations=4,
                  gradient_accumulation_steps=1, steps_per_generation=4, save_strategy="steps")
    assert OmniGRPOConfig(**common, save_steps=8).updates_per_generation == 4
    with pytest.raises(ValueError, match="multiple of the optimizer steps per generation"):
        OmniGRPOConfig(**common, save_steps=6)


def test_grpo_table_keeps_paths_not_pictures(assets):
    root, model_dir, data = assets
    dataset = build_grpo_dataset(data["train"], split="train")
    stored = dataset.data.column("image").to_pylist()
    assert all(item["bytes"] is None and item["path"].endswith(".png") for item in stored)
    assert len(set(dataset["record_id"])) == len(dataset)
    assert dataset[0]["image"].mode == "RGB"


def test_vllm_context_covers_image_prompt_and_completion(assets):
    from reward_model.backends import chat_messages
    from reward_model.grpo import fit_vllm_length, max_image_tokens, required_model_length

    root, model_dir, data = assets
    processor = AutoProcessor.from_pretrained(model_dir, min_pixels=3136, max_pixels=3136000)
    assert max_image_tokens(processor) == 4000  # the authors' max_pixels = 4000 x 28 x 28
    prompts = [chat_messages("technical", None), chat_messages("alignment", "a red circle " * 40)]
    needed = required_model_length(processor, prompts, 4096)
    text_only = required_model_length(processor, prompts[:1], 4096)
    assert needed > text_only > 4000 + 4096  # the longer alignment prompt sets the bound
    assert fit_vllm_length({"use_vllm": False}, processor, prompts) == {"use_vllm": False}
    chosen = fit_vllm_length({"use_vllm": True, "max_completion_length": 4096}, processor, prompts)
    assert chosen["vllm_max_model_length"] >= needed and chosen["vllm_max_model_length"] % 256 == 0
    with pytest.raises(ValueError, match="below the"):
        fit_vllm_length({"use_vllm": True, "max_completion_length": 4096, "vllm_max_model_length": 8192},
                        processor, prompts)
