"""ImageReward (Xu et al. 2023) on transformers' BLIP: the prompt is read by BLIP's text encoder with
cross-attention to the image; its first token's state goes through a small MLP to a reward, standardised
by the authors' published mean and std.

Loads a folder or hub id holding a transformers `BlipForImageTextRetrieval` (with its processor) and
`reward_head.safetensors` (the MLP). The authors release `THUDM/ImageReward` as one `ImageReward.pt`
in their own BLIP layout; converting it to this layout is not done here, so the default id is a promise
for GPU users to keep, not something this project has run.
"""

from __future__ import annotations

from pathlib import Path

from benchmarks.judges.base import PromptImageJudge, pick_device

REWARD_MEAN, REWARD_STD = 0.16717362830052426, 1.0333394966054072  # the authors' standardisation
HEAD_FILE = "reward_head.safetensors"


def build_reward_head(hidden: int):
    """hidden -> 1024 -> 128 -> 64 -> 16 -> 1, dropout between the first layers (ImageReward's head)."""
    from torch import nn

    return nn.Sequential(
        nn.Linear(hidden, 1024), nn.Dropout(0.2), nn.Linear(1024, 128), nn.Dropout(0.2),
        nn.Linear(128, 64), nn.Dropout(0.1), nn.Linear(64, 16), nn.Linear(16, 1),
    )


def _head_file(model: str) -> str:
    folder = Path(model)
    if folder.is_dir():
        return str(folder / HEAD_FILE)
    from huggingface_hub import hf_hub_download

    return hf_hub_download(model, HEAD_FILE)


class ImageRewardJudge(PromptImageJudge):
    name = "imagereward"
    dimensions = ("alignment",)
    description = "ImageReward: BLIP image-text encoder + reward MLP, standardised reward"
    default_model = "THUDM/ImageReward"

    def __init__(self, model: str | None = None, device: str | None = None, max_length: int = 35) -> None:
        from safetensors.torch import load_file
        from transformers import AutoProcessor, BlipForImageTextRetrieval

        model = model or self.default_model
        self.device = pick_device(device)
        self.blip = BlipForImageTextRetrieval.from_pretrained(model).to(self.device).eval()
        self.processor = AutoProcessor.from_pretrained(model)
        self.head = build_reward_head(self.blip.config.text_config.hidden_size)
        self.head.load_state_dict(load_file(_head_file(model)))
        self.head.to(self.device).eval()
        self.max_length = max_length

    def values(self, images: list, prompt: str) -> list[float]:
        import torch

        inputs = self.processor(images=images, text=[prompt] * len(images), return_tensors="pt",
                                padding="max_length", truncation=True, max_length=self.max_length).to(self.device)
        with torch.inference_mode():
            image_embeds = self.blip.vision_model(pixel_values=inputs["pixel_values"])[0]
            image_mask = torch.ones(image_embeds.shape[:-1], dtype=torch.long, device=self.device)
            text = self.blip.text_encoder(input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"],
                                          encoder_hidden_states=image_embeds, encoder_attention_mask=image_mask)
            reward = self.head(text[0][:, 0, :].float())[:, 0]
        return ((reward - REWARD_MEAN) / REWARD_STD).tolist()
