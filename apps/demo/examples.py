"""The prompts the page offers as examples (and draws as its first-screen samples)."""

WORLD_EXAMPLES = [
    "a red circle above a small blue square on a white background",
    "a large yellow triangle on the left on a black background",
    "a green square to the right of a purple circle",
    "a small orange circle in the center on a gray background",
]
COUNTING_EXAMPLES = ["three red squares on a white background"]  # when the generator knows count words
