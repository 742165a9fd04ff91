"""How long the scorer takes to judge one best-of-8: 8 generator pictures on three dimensions, one call.

    python -m benchmarks.scoring_time                          # the shipped embedded scorer
    python -m benchmarks.scoring_time --models embedded,OLD_SCORER_DIR --repeats 5
    python -m benchmarks.scoring_time --models embedded,embedded:own        # the preset's verdicts against the judge's own

The pictures are the embedded generator's best-of-8 candidates for one held-out prompt. Each model scores
them in one `OmniQualityScorer.score` call (default sampled decoding, cache cleared before every call, so
each call reasons afresh); with several models the calls alternate, so a busy machine slows them alike and
their ratio stays fair. Prints the median seconds per call for each model (the target: under 3 s on a
2-core CPU).
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from benchmarks.common import held_out_prompts, preset_verdicts

DIMENSIONS = ("technical", "aesthetic", "alignment")


def candidates(prompt: str, n: int = 8) -> list:
    from t2i_guidance.generator import GenerationSettings
    from t2i_guidance.search.run_builder import RunRequest, load_generator, plan_run

    plan = plan_run(RunRequest(preset="embedded", device="cpu"))
    settings = GenerationSettings(num_inference_steps=plan.preset.num_inference_steps,
                                  guidance_scale=plan.preset.guidance_scale)
    return load_generator(plan).generate(prompt, list(range(n)), settings)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="embedded", help="comma-separated scorer models (name or folder); "
                        "MODEL:VERDICTS picks how its alignment verdicts are reached (default: the embedded preset's "
                        "for 'embedded', 'own' for any other)")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    from reward_model.interface import ImageItem
    from reward_model.scorer import OmniQualityScorer, ScoreCache

    torch.set_num_threads(args.threads)
    prompt = held_out_prompts(1)[0]
    items = [ImageItem(c.id, c.image) for c in candidates(prompt)]
    scorers = {}
    for spec in args.models.split(","):
        name, _, verdicts = spec.partition(":")
        verdicts = verdicts or (preset_verdicts() if name == "embedded" else "own")
        scorers[f"{name} ({verdicts} verdicts)"] = OmniQualityScorer(model=name, seed=0, verdicts=verdicts)
    for scorer in scorers.values():  # warm-up: first-call costs are not the judging
        scorer.score(items[:1], prompt, DIMENSIONS)
    seconds: dict[str, list[float]] = {name: [] for name in scorers}
    for _ in range(args.repeats):
        for name, scorer in scorers.items():
            scorer.cache = ScoreCache()
            start = time.perf_counter()
            table = scorer.score(items, prompt, DIMENSIONS)
            seconds[name].append(time.perf_counter() - start)
            failed = sum(not table[i.id][d].ok for i in items for d in DIMENSIONS)
            if failed:
                print(f"{name}: {failed} of {len(items) * len(DIMENSIONS)} scores failed")
    for name, values in seconds.items():
        print(f"{name}: {statistics.median(values):.2f} s per best-of-8 on three dimensions "
              f"(median of {len(values)}, {args.threads} thread(s))")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
