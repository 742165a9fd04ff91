"""Benchmarks of the guidance tool and the scorer, each run as `python -m benchmarks.<name>`."""

from t2i_guidance.world.prompt_sets import register_prompt_sets

# The embedded world's prompt sets (`world-geneval`), until the world registers them from its own plugin.
register_prompt_sets()
