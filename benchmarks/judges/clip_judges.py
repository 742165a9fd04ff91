"""CLIP-family judges loaded by hub id or folder with transformers' CLIPModel: CLIPScore, PickScore, HPSv2.

- CLIPScore (Hessel et al. 2021): 100 x max(cos(image, text), 0), the torchmetrics convention
  (the paper's w = 2.5 scaling is 2.5 / 100 of it). Default `openai/clip-vit-large-patch14`.
- PickScore (Kirstain et al. 2023): the model's logit scale x cos. Model `yuvalkirstain/PickScore_v1` with
  the processor of `laion/CLIP-ViT-H-14-laion2B-s32B-b79K`.
- HPSv2 (Wu et al. 2023): logit scale x cos of a CLIP ViT-H-14 fine-tuned on human preferences. The
  authors release an open_clip checkpoint (`HPS_v2_compressed.pt`); this judge needs it in transformers'
  CLIP format (a local folder or a hub id holding one), which is not converted here.
All three are prompt-conditioned preferences and are reported as the `alignment` dimension.
"""

from __future__ import annotations

from benchmarks.judges.base import PromptImageJudge, pick_device


class CLIPFamilyJudge(PromptImageJudge):
    default_model = "openai/clip-vit-large-patch14"
    default_processor: str | None = None

    def __init__(self, model: str | None = None, processor: str | None = None, device: str | None = None) -> None:
        import torch
        from transformers import AutoProcessor, CLIPModel

        self.device = pick_device(device)
        model_id = model or self.default_model
        dtype = torch.float16 if self.device.startswith("cuda") else torch.float32
        self.model = CLIPModel.from_pretrained(model_id, dtype=dtype).to(self.device).eval()
        self.processor = AutoProcessor.from_pretrained(processor or self.default_processor or model_id)
        self.model_id = model_id

    def cosines(self, images: list, prompt: str):
        import torch

        inputs = self.processor(text=[prompt], images=images, return_tensors="pt", padding=True, truncation=True)
        inputs = {k: v.to(self.device) for k, v in inputs.items()}
        with torch.inference_mode():
            image_embeds = self.model.get_image_features(pixel_values=inputs["pixel_values"].to(self.model.dtype))
            text_embeds = self.model.get_text_features(input_ids=inputs["input_ids"],
                                                       attention_mask=inputs.get("attention_mask"))
        image_embeds = getattr(image_embeds, "pooler_output", image_embeds)
        text_embeds = getattr(text_embeds, "pooler_output", text_embeds)
        image_embeds = torch.nn.functional.normalize(image_embeds.float(), dim=-1)
        text_embeds = torch.nn.functional.normalize(text_embeds.float(), dim=-1)
        return (image_embeds @ text_embeds.T)[:, 0]

    def logit_scale(self) -> float:
        return float(self.model.logit_scale.detach().exp())


class CLIPScoreJudge(CLIPFamilyJudge):
    name = "clipscore"
    description = "CLIPScore: 100 x max(cosine(image, prompt), 0)"

    def values(self, images: list, prompt: str) -> list[float]:
        return (100.0 * self.cosines(images, prompt).clamp(min=0)).tolist()


class PickScoreJudge(CLIPFamilyJudge):
    name = "pickscore"
    description = "PickScore: logit scale x cosine(image, prompt)"
    default_model = "yuvalkirstain/PickScore_v1"
    default_processor = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"

    def values(self, images: list, prompt: str) -> list[float]:
        return (self.logit_scale() * self.cosines(images, prompt)).tolist()


class HPSv2Judge(PickScoreJudge):
    name = "hpsv2"
    description = "HPSv2: logit scale x cosine(image, prompt) of the preference-tuned CLIP"
    default_model = "xswu/HPSv2"  # needs a transformers-format copy; see the module docstring
    default_processor = "laion/CLIP-ViT-H-14-laion2B-s32B-b79K"
