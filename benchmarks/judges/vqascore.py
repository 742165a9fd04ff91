"""VQAScore (Lin et al. 2024): the probability that a vision-language model answers "Yes" to
'Does this figure show "{prompt}"? Please answer yes or no.' — read from the next-token distribution,
no text generated.

Any transformers image-text-to-text model with a chat template works (`AutoModelForImageTextToText`).
The paper's best model, CLIP-FlanT5-XXL, is not a transformers class; the default here is
`Qwen/Qwen2.5-VL-7B-Instruct`, which VQAScore's authors also support. Value 0..1, reported as alignment.
"""

from __future__ import annotations

from benchmarks.judges.base import PromptImageJudge, pick_device

QUESTION = 'Does this figure show "{}"? Please answer yes or no.'


class VQAScoreJudge(PromptImageJudge):
    name = "vqascore"
    dimensions = ("alignment",)
    description = 'VQAScore: P("Yes" | image, "Does this figure show the prompt?")'
    default_model = "Qwen/Qwen2.5-VL-7B-Instruct"
    batch_size = 8

    def __init__(self, model: str | None = None, device: str | None = None, answer: str = "Yes") -> None:
        import torch
        from transformers import AutoModelForImageTextToText, AutoProcessor

        model = model or self.default_model
        self.device = pick_device(device)
        dtype = torch.bfloat16 if self.device.startswith("cuda") else torch.float32
        self.model = AutoModelForImageTextToText.from_pretrained(model, dtype=dtype).to(self.device).eval()
        self.processor = AutoProcessor.from_pretrained(model)
        ids = self.processor.tokenizer.encode(answer, add_special_tokens=False)
        if not ids:
            raise ValueError(f"the tokenizer of {model!r} cannot encode {answer!r}")
        self.answer_id = ids[0]  # the first token of the answer carries the decision

    def values(self, images: list, prompt: str) -> list[float]:
        import torch

        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": QUESTION.format(prompt)}]}]
        text = self.processor.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        inputs = self.processor(images=images, text=[text] * len(images), padding=True, padding_side="left",
                                return_tensors="pt").to(self.device)
        with torch.inference_mode():
            logits = self.model(**inputs).logits[:, -1, :].float()
        return torch.softmax(logits, dim=-1)[:, self.answer_id].tolist()
