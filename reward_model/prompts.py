"""The instruction strings the released OmniQuality-R checkpoint was trained with.

They are part of the model's interface: changing a character changes what the model sees. Tests compare
them with the specification in shared/reference/omniquality-r.md.
"""

from __future__ import annotations

SYSTEM_PROMPT = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. "
    "The assistant first thinks about the reasoning process in the mind and then provides the user with "
    "the answer. The reasoning process and answer are enclosed within <think> </think> and <answer> "
    "</answer> tags, respectively, i.e., <think> reasoning process here </think><answer> answer here "
    "</answer>"
)

TECHNICAL_INSTRUCTION = (
    "Give a technical quality score for this picture between 0 and 5 (float, two decimal places). "
    "A rating of 0 represents very poor quality, while 5 represents excellent quality."
)

AESTHETIC_INSTRUCTION = (
    "Provide a float rating between 0 and 5 for the overall aesthetics of this image, rounded to two "
    "places. A rating of 0 represents very poor aesthetic quality, while 5 represents excellent "
    "aesthetic quality."
)

ALIGNMENT_INSTRUCTION = (
    'Judge the image alignment with the prompt: "{}"\n'
    "Please evaluate how well the image matches each element of provided prompt.\n"
    "\n"
    "And answer with the final alignment rating.\n"
    "Rate it from 0 to 5 (float, 2 decimals). A rating of 0 represents very poor alignment level, "
    "while 5 represents excellent alignment level."
)

SCORE_MIN, SCORE_MAX = 0.0, 5.0

# Image size bounds used by the authors at inference (Qwen2.5-VL counts pixels in 28x28 patches).
MIN_PIXELS = 4 * 28 * 28
MAX_PIXELS = 4000 * 28 * 28


def instruction_for(dimension: str, prompt: str | None = None) -> str:
    """The user-turn instruction for one dimension; alignment needs the generation prompt."""
    if dimension == "technical":
        return TECHNICAL_INSTRUCTION
    if dimension == "aesthetic":
        return AESTHETIC_INSTRUCTION
    if dimension == "alignment":
        if prompt is None or not prompt.strip():
            raise ValueError("alignment needs the generation prompt")
        return ALIGNMENT_INSTRUCTION.format(prompt)
    raise ValueError(f"unknown dimension {dimension!r}")


def chat_messages(dimension: str, prompt: str | None = None, image: object | None = None) -> list[dict]:
    """Messages in the Qwen2.5-VL chat format: system turn, then a user turn with image first."""
    image_part: dict = {"type": "image"}
    if image is not None:
        image_part["image"] = image
    return [
        {"role": "system", "content": [{"type": "text", "text": SYSTEM_PROMPT}]},
        {
            "role": "user",
            "content": [image_part, {"type": "text", "text": instruction_for(dimension, prompt)}],
        },
    ]
