"""The Gradio demo for artists: type a prompt, get N candidates ranked by the reward model, see why.

    python -m apps.demo                 # http://127.0.0.1:7860, the embedded preset
    python -m apps.demo --preset sana --host 0.0.0.0

It listens on 127.0.0.1 unless told otherwise, queues at most a few jobs, caps uploads, and never
opens a path typed by a user: images reach it only as uploads. Pictures are shown large with
nearest-neighbour scaling (the embedded model draws 32 px), served and downloaded as lossless PNG
carrying the prompt, seed, settings and scores in their metadata.

One job a module: `layout` (the page), `handlers` (its events), `service` (a run through the run builder,
one at a time), `progress` (the status line), `rendering` (what the page shows), `judge_notes` (how sure
the judge is, in words), `downloads` (files people keep), `picks` (the artist's pick and the preference
file), `samples` (what the model draws, for the first screen), `strategies` (the strategies and their
settings), `preset_facts` (what a preset says before loading), `limits`, `server`.
"""

from apps.demo.handlers import generate, pick, score_upload
from apps.demo.layout import WORLD_EXAMPLES, build_demo
from apps.demo.preset_facts import preset_weights, prompt_warning
from apps.demo.progress import stage_text
from apps.demo.rendering import ROUND_THUMB_PX, rewrite_reason, trade_off_front
from apps.demo.server import build_parser, launch, main
from apps.demo.strategies import all_settings, setting_spec, strategy_help, strategy_names, strategy_settings

__all__ = [
    "ROUND_THUMB_PX", "WORLD_EXAMPLES", "all_settings", "build_demo", "build_parser", "generate", "launch", "main", "pick",
    "preset_weights", "prompt_warning", "rewrite_reason", "score_upload", "setting_spec", "stage_text",
    "strategy_help", "strategy_names", "strategy_settings", "trade_off_front",
]
