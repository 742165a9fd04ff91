"""The scorer's transformers backend, asked the teacher's question (plan, perceive, then score)."""

from __future__ import annotations

from reward_model.backends import Request
from reward_model.backends.transformers_backend import TransformersBackend
from reward_model.cot.teacher_prompt import teacher_messages


class TeacherBackend(TransformersBackend):
    """Same batching, decoding and stop tokens as scoring; only the rendered prompt differs."""

    name = "transformers-teacher"

    def render(self, request: Request) -> str:
        messages = teacher_messages(request.dimension, request.prompt)
        text = self.processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return text + request.prefix
