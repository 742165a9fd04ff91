"""The teacher's question: the scoring chat with a plan-then-reason instruction appended.

Its own module so the teachers and the teacher's transformers backend both import it from below.
"""

from __future__ import annotations

from reward_model.backends import chat_messages
from reward_model.data.schema import IQARecord

TEACHER_INSTRUCTION = (
    "\nFirst write a short plan starting with 'Plan:' and ending with a blank line, then describe what you "
    "see in the image before judging it, then give the score."
)


def teacher_messages(task: str, prompt: str | None) -> list[dict]:
    """The scoring chat with the plan-then-reason instruction appended to the user turn."""
    messages = chat_messages(task, prompt)
    messages[-1]["content"][-1]["text"] += TEACHER_INSTRUCTION
    return messages


def teacher_prompt(processor, record: IQARecord) -> str:
    """The scoring prompt with the plan-then-reason instruction, through the teacher's chat template."""
    return processor.apply_chat_template(teacher_messages(record.task, record.prompt), add_generation_prompt=True,
                                         tokenize=False)
