"""CoT teachers by name; a config's `cot.teacher` picks one. A new teacher is one `TEACHERS.add` line."""

from __future__ import annotations

from reward_model.cot.teachers import Teacher
from reward_model.interface import LazyRegistry

TEACHERS = LazyRegistry("teacher")
TEACHERS.add("rule-based", "reward_model.cot.teachers:RuleBasedTeacher")
TEACHERS.add("transformers", "reward_model.cot.teachers:TransformersTeacher")
TEACHERS.add("vllm", "reward_model.cot.teachers:VLLMTeacher")


def build_teacher(name: str, **options: object) -> Teacher:
    if name not in TEACHERS.names():
        raise ValueError(f"unknown teacher {name!r}; available: {', '.join(TEACHERS.names())}")
    return TEACHERS.get(name)(**options)
