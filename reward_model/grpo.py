"""GRPO with the paper's two stabilisers on top of TRL's GRPOTrainer.

- STD filtering: a prompt whose group of accuracy rewards has std <= `std_filter_threshold` carries no
  learning signal (all its advantages are ~0), so its rows are removed from the micro-batches before the
  forward pass: they cost neither forward nor backward. The fraction of dropped groups is logged as
  `std_filter/frac_groups_dropped`. TRL only logs `frac_reward_zero_std`.
- Entropy gating: only the top `top_entropy_quantile` (rho = 0.2 in stage 2) highest-entropy tokens carry
  the clipped policy loss. TRL ranks tokens against ONE threshold over the whole batch; the authors rank
  each response's tokens against its own (k = ceil(rho * valid tokens)). `entropy_gating` picks the rule:
  "per_response" (default, the paper's) or "batch" (TRL's).

- Gated loss normalisation: with gating on, TRL divides each response's gated policy loss by ALL its valid
  tokens; the released code divides by the GATED ones (about 1/rho = 5x larger at rho 0.2).
  `gated_loss_normalization` = "gated" (the default, the release's) or "valid" (TRL's). It is applied by
  weighting each response's gate by n_valid / n_gated, so only the policy term changes.
- KL: TRL's k3 estimator, exp(ref - logp) - (ref - logp) - 1, on every valid token (never gated), averaged
  over the response's valid tokens with weight `beta`, times the importance ratio when
  `use_bias_correction_kl` is on (TRL's default).
- A window of micro-batches in which the STD filter dropped every group (on every rank) skips the
  optimizer step: Adam's moments would otherwise move the weights on zero gradients.

In a multi-process run every rank must run the same number of forward passes (DDP all-reduce, ZeRO-3
parameter gathering), so a rank whose micro-batch kept fewer rows than the others is padded with dropped
rows whose completion mask is zeroed: they contribute nothing to the loss.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import torch
from trl import GRPOConfig, GRPOTrainer
from trl.trainer.utils import nanstd, split_pixel_values_by_grid, unsplit_pixel_values_by_grid

from reward_model.backends import chat_messages
from reward_model.checkpoints import ConvertedCheckpointLoading
from reward_model.cot.teachers import record_key
from reward_model.data.lazy_images import lazy_image_table
from reward_model.data.schema import read_records, resolve_image_path

# Loss types that average per sequence: padding rows would dilute them, so the loss is rescaled.
_PER_SEQUENCE_LOSSES = ("grpo", "sapo", "luspo", "dr_grpo")


@dataclass
class OmniGRPOConfig(GRPOConfig):
    std_filter: bool = field(default=False, metadata={"help": "Drop groups whose accuracy-reward std is tiny."})
    std_filter_threshold: float = field(default=0.001, metadata={"help": "Groups with std <= this are dropped."})
    std_filter_reward: str = field(default="accuracy", metadata={"help": "Reward function whose std is tested."})
    entropy_gating: str = field(
        default="per_response",
        metadata={"help": "'per_response' (the paper's: top rho of each response) or 'batch' (TRL's)."},
    )

    gated_loss_normalization: str = field(
        default="gated",
        metadata={"help": "With entropy gating: divide each response's policy loss by its 'gated' tokens (the "
                          "release's) or by all its 'valid' tokens (TRL's)."},
    )

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.entropy_gating not in ("per_response", "batch"):
            raise ValueError("entropy_gating must be 'per_response' or 'batch'")
        if self.gated_loss_normalization not in ("gated", "valid"):
            raise ValueError("gated_loss_normalization must be 'gated' or 'valid'")
        if (self.gated_loss_normalization == "gated" and self.top_entropy_quantile < 1.0
                and self.loss_type not in ("grpo", "sapo")):
            raise ValueError("gated_loss_normalization='gated' needs a per-response loss (loss_type grpo or sapo)")
        self._check_checkpoints_on_generation_boundaries()

    @property
    def updates_per_generation(self) -> float:
        """Optimizer steps trained on one generation batch (16 in the release: 64 prompts x 16 rollouts)."""
        return self.steps_per_generation * self.num_iterations / self.gradient_accumulation_steps

    def _check_checkpoints_on_generation_boundaries(self) -> None:
        """A checkpoint inside a generation window loses the buffered rollouts, so the resumed run would
        regenerate them with new samples: the data order would differ from an uninterrupted run."""
        every = self.updates_per_generation
        if self.save_strategy != "steps" or every <= 1 or self.save_steps < 1:
            return
        if self.save_steps % every:
            raise ValueError(f"save_steps ({self.save_steps:g}) must be a multiple of the optimizer steps per "
                             f"generation batch ({every:g}) so a resumed run sees the same rollouts")


def std_filter_keep(group_rewards: torch.Tensor, num_generations: int, threshold: float) -> torch.Tensor:
    """Per-row keep mask: False for every row of a group whose reward std is <= threshold."""
    groups = group_rewards.view(-1, num_generations)
    keep_group = nanstd(groups, dim=1) > threshold
    return keep_group.repeat_interleave(num_generations)


def per_response_entropy_mask(entropies: torch.Tensor, mask: torch.Tensor, rho: float) -> torch.Tensor:
    """True on exactly k = ceil(rho * n_valid) highest-entropy valid tokens of each row."""
    valid = mask.bool()
    # The small epsilon keeps ceil(0.2 * 15) at 3 despite 0.2 * 15 = 3.0000000000000004 in floating point.
    k = torch.ceil(valid.sum(dim=-1).double() * rho - 1e-9).long().clamp(min=0)
    gate = torch.zeros_like(valid)
    k_max = int(k.max().item()) if k.numel() else 0
    if k_max == 0:
        return gate
    scores = entropies.detach().float().masked_fill(~valid, float("-inf"))
    top = torch.topk(scores, k_max, dim=-1).indices  # one top-k for the batch, then each row keeps its own k
    wanted = torch.arange(k_max, device=scores.device).unsqueeze(0) < k.unsqueeze(-1)
    gate.scatter_(-1, top, wanted)
    return gate & valid


def normalise_gate_to_gated_tokens(gate: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """The gate as weights n_valid / n_gated per row: a per-response mean over valid tokens of the gated
    loss then equals the mean over the gated tokens alone. Rows with no gated token stay all zero."""
    gated = gate.float().sum(dim=-1, keepdim=True)
    valid = mask.float().sum(dim=-1, keepdim=True)
    return gate.float() * torch.where(gated > 0, valid / gated.clamp(min=1.0), torch.zeros_like(gated))


def batch_entropy_mask(entropies: torch.Tensor, mask: torch.Tensor, rho: float) -> torch.Tensor:
    """TRL's rule on one process: one entropy threshold (the 1 - rho quantile) over all valid tokens."""
    values = entropies[mask.bool()].float()
    if values.numel() == 0:
        return torch.zeros_like(mask, dtype=torch.bool)
    threshold = torch.quantile(values, 1.0 - rho)
    return (entropies >= threshold) & mask.bool()


def select_rows(batch: dict, rows: list[int]) -> dict:
    """The micro-batch restricted to `rows` (pixel values are split per sample, indexed, re-joined)."""
    size = len(batch["advantages"])
    split = split_pixel_values_by_grid(batch)
    index = torch.tensor(rows, dtype=torch.long, device=batch["advantages"].device)
    selected = {}
    for key, value in split.items():
        if isinstance(value, torch.Tensor) and value.ndim >= 1 and value.shape[0] == size:
            selected[key] = value[index]
        elif isinstance(value, list) and len(value) == size:
            selected[key] = [value[i] for i in rows]
        else:
            selected[key] = value
    return unsplit_pixel_values_by_grid(selected)


class OmniGRPOTrainer(ConvertedCheckpointLoading, GRPOTrainer):
    """TRL's GRPOTrainer plus STD filtering (rows skipped before the forward) and per-response gating."""

    args: OmniGRPOConfig

    def __init__(self, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if self.args.std_filter and self.args.std_filter_reward not in self.reward_func_names:
            raise ValueError(
                f"std_filter_reward {self.args.std_filter_reward!r} is not among the rewards {self.reward_func_names}"
            )
        self._last_rewards_per_func: torch.Tensor | None = None
        self._window_real_rows = 0  # rows kept by the STD filter in this accumulation window, all ranks

    # --- STD filtering -------------------------------------------------------------------------------
    def _calculate_rewards(self, inputs, prompts, completions, completion_ids_list):
        rewards = super()._calculate_rewards(inputs, prompts, completions, completion_ids_list)
        self._last_rewards_per_func = rewards  # gathered over all processes, groups contiguous
        return rewards

    def _generate_and_score_completions(self, inputs):
        output = super()._generate_and_score_completions(inputs)
        if not (self.args.std_filter and self.model.training):
            return output
        column = self.reward_func_names.index(self.args.std_filter_reward)
        keep = std_filter_keep(
            self._last_rewards_per_func[:, column], self.num_generations, self.args.std_filter_threshold
        )
        groups = keep.view(-1, self.num_generations)[:, 0]
        self._metrics["train"]["std_filter/frac_groups_dropped"].append(1.0 - groups.float().mean().item())
        local = len(output["advantages"])
        start = self.accelerator.process_index * local
        output["std_keep"] = keep[start : start + local].to(output["advantages"].device)
        # Losses normalised by the token count of the batch must count only the tokens that are trained.
        kept_tokens = (output["completion_mask"] * output["std_keep"].unsqueeze(1)).sum()
        output["num_items_in_batch"] = self.accelerator.gather(kept_tokens).sum()
        return output

    def _prepare_inputs(self, generation_batch):
        inputs = super()._prepare_inputs(generation_batch)
        return self._apply_std_filter(inputs) if "std_keep" in inputs else inputs

    def _apply_std_filter(self, inputs: dict) -> dict:
        """The micro-batch without the rows of dropped groups (padded in multi-process runs)."""
        inputs = dict(inputs)  # the buffered batch is reused across iterations: never mutate it
        keep = inputs.pop("std_keep")
        rows = keep.nonzero().flatten().tolist()
        real = len(rows)
        self._window_real_rows += real
        if self.accelerator.num_processes > 1:
            counts = self.accelerator.gather(torch.tensor([real], device=keep.device))
            self._window_real_rows += int(counts.sum().item()) - real
            target = max(1, int(counts.max().item()))
            padding = (~keep).nonzero().flatten().tolist()[: target - real]
            rows = rows + padding
            self._metrics["train"]["std_filter/padding_rows"].append(float(len(padding)))
        if not rows:
            return {"advantages": inputs["advantages"][:0], "std_real_rows": 0}
        if len(rows) < len(keep):
            inputs = select_rows(inputs, rows)
        if len(rows) > real:  # padding rows: present for the collectives, silent in the loss
            mask = inputs["completion_mask"].clone()
            mask[real:] = 0
            inputs["completion_mask"] = mask
        inputs["std_real_rows"] = real
        return inputs

    def compute_loss(self, model, inputs, return_outputs=False, num_items_in_batch=None):
        real = inputs.pop("std_real_rows", None)
        skipped = real == 0 and inputs["advantages"].numel() == 0
        if real is not None:
            self._metrics["train"]["std_filter/frac_microbatches_skipped"].append(float(skipped))
            self._skip_step_without_signal()
        if skipped:  # every group of this micro-batch was dropped (single process): no forward, no backward
            return torch.zeros((), device=self.accelerator.device, requires_grad=True)
        loss = super().compute_loss(model, inputs, return_outputs, num_items_in_batch)
        rows = len(inputs["advantages"])
        if real and real < rows and self.loss_type in _PER_SEQUENCE_LOSSES:
            loss = loss * (rows / real)  # padding rows add zeros to a per-sequence mean: undo the dilution
        return loss

    def _skip_step_without_signal(self) -> None:
        """At the last micro-batch of a window: when no rank kept any row, tell accelerate not to step.

        The optimizer (and scheduler) wrappers step only while `sync_gradients` is set; the gradients of
        this window are all zero, so nothing carries over. (Checked on the DDP path; under DeepSpeed the
        engine steps inside backward and this is untested.)"""
        state = self.accelerator.gradient_state
        if not state.sync_gradients:
            return
        empty = self._window_real_rows == 0
        self._window_real_rows = 0
        self._metrics["train"]["std_filter/optimizer_step_skipped"].append(float(empty))
        if empty:
            state._set_sync_gradients(False)

    # --- entropy gating ------------------------------------------------------------------------------
    def get_high_entropy_mask(self, entropies: torch.Tensor, mask: torch.Tensor, threshold: float) -> torch.Tensor:
        if self.args.entropy_gating == "batch":
            gate = super().get_high_entropy_mask(entropies, mask, threshold)
        else:
            gate = per_response_entropy_mask(entropies, mask, self.top_entropy_quantile)
        if self.args.gated_loss_normalization == "gated":
            return normalise_gate_to_gated_tokens(gate, mask)
        return gate


def max_image_tokens(processor) -> int:
    """The most tokens one image can become under the processor's pixel bound (Qwen2-VL resizing)."""
    image_processor = processor.image_processor
    size = image_processor.size
    max_pixels = size.get("longest_edge") if hasattr(size, "get") else getattr(size, "longest_edge", None)
    max_pixels = max_pixels or getattr(image_processor, "max_pixels", None)
    unit = image_processor.patch_size * getattr(image_processor, "merge_size", 1)
    return int(max_pixels) // (unit * unit)


def required_model_length(processor, prompts: list[list[dict]], max_completion_length: int) -> int:
    """Context a rollout needs: the largest image + the longest prompt's text + every generated token."""
    placeholder = getattr(processor, "image_token", "<|image_pad|>")
    longest = 0
    for prompt in prompts:
        text = processor.apply_chat_template(prompt, add_generation_prompt=True, tokenize=False)
        tokens = len(processor.tokenizer(text, add_special_tokens=False)["input_ids"]) - text.count(placeholder)
        longest = max(longest, tokens)
    return max_image_tokens(processor) + longest + max_completion_length


def fit_vllm_length(args: dict, processor, prompts: list[list[dict]]) -> dict:
    """Check (or set, rounded up to 256) `vllm_max_model_length` so no rollout is cut; args unchanged without vLLM."""
    if not args.get("use_vllm"):
        return args
    needed = required_model_length(processor, prompts, int(args.get("max_completion_length") or 256))
    given = args.get("vllm_max_model_length")
    if given is None:
        return args | {"vllm_max_model_length": -(-needed // 256) * 256}
    if int(given) < needed:
        raise ValueError(f"vllm_max_model_length {given} is below the {needed} tokens a rollout can need "
                         "(largest image + longest prompt + max_completion_length)")
    return args


def build_grpo_dataset(jsonl_path: str | Path, split: str | None = "train", limit: int | None = None):
    """A TRL dataset: conversational `prompt` (image placeholder first), `image` (a path, decoded when a
    batch is built), `label`, `task` and `record_id` (a stable key, for logs and batch-wide rewards)."""
    rows = []
    for record in read_records(jsonl_path):
        if limit is not None and len(rows) >= limit:  # stop reading: a large split is not scanned for nothing
            break
        if split is not None and record.split != split:
            continue
        rows.append({"prompt": chat_messages(record.task, record.prompt),
                     "image": str(resolve_image_path(record, jsonl_path)),
                     "label": record.label, "task": record.task, "record_id": record_key(record)})
    if not rows:
        raise ValueError(f"no records with split {split!r} in {jsonl_path}")
    return lazy_image_table(rows, "image")
