"""Independent judges, registered as scorers by name. Importing this package registers them all; each
module is imported only when its scorer is built (no torch or model code at registration)."""

from __future__ import annotations

from t2i_guidance.registries import register_scorer

register_scorer("clipscore", "benchmarks.judges.clip_judges:CLIPScoreJudge")
register_scorer("pickscore", "benchmarks.judges.clip_judges:PickScoreJudge")
register_scorer("hpsv2", "benchmarks.judges.clip_judges:HPSv2Judge")
register_scorer("imagereward", "benchmarks.judges.imagereward:ImageRewardJudge")
register_scorer("vqascore", "benchmarks.judges.vqascore:VQAScoreJudge")
