"""How well a scorer agrees with people (or with the world's ground truth): SRCC, PLCC, PLCC after the
4-parameter logistic, per source and task, beside the peers' published numbers.

    python -m benchmarks.iqa --world 300 --out runs/iqa_world                 # world's held-out records (here)
    python -m benchmarks.iqa --records DATA.jsonl --out runs/iqa --scorer omniquality-r --scorer-model embedded
    python -m benchmarks.iqa --dataset koniq10k --root /data/koniq --out runs/iqa_koniq \\
        --scorer omniquality-r --scorer-model yeeeeeyy/OmniQuality-R        # GPU users: any adapter's dataset

Records are `reward_model.data.schema.IQARecord` lines (test split by default). Every record is scored
through the registered scorer on its own task (technical, aesthetic, alignment; alignment with the
record's prompt); a failed or unparsable score is counted and never given a number. Predictions are
appended to OUT/predictions.jsonl as they finish (a rerun resumes); OUT/metrics.md holds the table.
"""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from t2i_guidance.input_checks import OneLineParser, fail

# PLCC / SRCC as reported by the peers' papers (second-hand, from the OmniQuality-R paper's tables).
PEERS = {
    "VisualQuality-R1 (trained on KADID-10K)": {"koniq10k": (0.840, 0.830), "spaq": (0.878, 0.875),
                                                 "agiqa3k": (0.843, 0.775)},
    "Q-Insight (trained on KonIQ)": {"koniq10k": (0.933, 0.916), "spaq": (0.907, 0.905), "agiqa3k": (0.811, 0.764)},
}


def score_records(scorer, records: list, jsonl_path: Path, out: Path, batch_size: int = 16) -> list[dict]:
    """One prediction row per record, resumed from OUT/predictions.jsonl."""
    from PIL import Image
    from tqdm.auto import tqdm

    from benchmarks.rows import RowWriter, read_rows
    from reward_model.data.schema import resolve_image_path
    from reward_model.interface import ImageItem

    path = out / "predictions.jsonl"
    done = {r["image"] + "|" + r["task"]: r for r in read_rows(path)}
    pending = [r for r in records if r.image + "|" + r.task not in done]
    # Records that share a task and a prompt are scored in one call.
    groups: dict[tuple, list] = {}
    for record in pending:
        groups.setdefault((record.task, record.prompt), []).append(record)
    with RowWriter(path) as writer, tqdm(total=len(pending), desc="iqa", unit="img") as bar:
        for (task, prompt), members in groups.items():
            for start in range(0, len(members), batch_size):
                chunk = members[start : start + batch_size]
                items = []
                for record in chunk:
                    with Image.open(resolve_image_path(record, jsonl_path)) as image:
                        items.append(ImageItem(record.image, image.convert("RGB")))
                try:
                    table = scorer.score(items, prompt, [task])
                except Exception as error:  # one failed call fails its records only
                    table = {}
                    failure = repr(error)
                for record in chunk:
                    result = table.get(record.image, {}).get(task)
                    row = {"image": record.image, "task": task, "source": record.source, "label": record.label,
                           "score": result.score if result is not None and result.ok else None,
                           "status": result.status.value if result is not None else "error",
                           "error": (result.error if result is not None else failure) if not (result and result.ok)
                           else None}
                    writer.append(row)
                    done[row["image"] + "|" + task] = row
                bar.update(len(chunk))
    return [done[r.image + "|" + r.task] for r in records]


def peers_lines(table: list[dict]) -> list[str]:
    ours = {(r["source"], r["task"]): r for r in table}
    lines = ["| dataset | model | PLCC | SRCC |", "|---|---|---|---|"]
    for dataset in ("koniq10k", "spaq", "agiqa3k"):
        for peer, numbers in PEERS.items():
            plcc, srcc = numbers[dataset]
            lines.append(f"| {dataset} | {peer} (published) | {plcc:.3f} | {srcc:.3f} |")
        mine = ours.get((dataset, "technical"))
        cell = lambda v: "n/a" if v is None else f"{v:.3f}"  # noqa: E731
        lines.append(f"| {dataset} | ours | {cell(mine['plcc']) if mine else 'not run'} | "
                     f"{cell(mine['srcc']) if mine else 'not run'} |")
    return lines


def run(args) -> Path:
    from reward_model.data.schema import read_records
    from reward_model.evaluate import correlation_table, format_table
    from t2i_guidance import registries as scorers

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.world:
        from t2i_guidance.world.training.iqa_export import export

        if not (out / "world" / "test.jsonl").exists():
            export(out / "world", args.world, seed=args.seed, size=args.size)
        jsonl = out / "world" / "test.jsonl"
    elif args.dataset:
        from reward_model.data.adapters import ADAPTERS
        from reward_model.data.schema import write_records

        jsonl = out / f"{args.dataset}.jsonl"
        if not jsonl.exists():
            records = [r.__class__(**{**r.__dict__, "image": str(Path(args.root) / r.image)})
                       if not Path(r.image).is_absolute() else r for r in ADAPTERS.get(args.dataset)(Path(args.root))]
            write_records(jsonl, records)
    else:
        jsonl = Path(args.records)
    files = [jsonl]
    if args.world and args.split != "test":  # the export writes its splits to two files in one folder
        files.append(jsonl.with_name("train.jsonl"))
    records = [r for f in files for r in read_records(f) if args.split in (None, "all") or r.split == args.split]
    records = records[: args.limit] if args.limit else records
    if not records:
        raise ValueError(f"no records with split {args.split!r} in {jsonl}")
    kwargs = json.loads(args.scorer_kwargs) if args.scorer_kwargs else {}
    if args.scorer_model:
        kwargs["model"] = args.scorer_model
    scorer = scorers.build_scorer(args.scorer, **kwargs)
    rows = score_records(scorer, records, jsonl, out)
    table = correlation_table(rows)
    text = [f"# Scorer correlation: `{args.scorer}` {kwargs or ''} on {jsonl} ({len(records)} records, split "
            f"{args.split})", "", f"Command: `python -m benchmarks.iqa {shlex.join(args.argv)}`", "",
            format_table(table), "## Beside the peers (technical quality; their numbers as published)", "",
            *peers_lines(table), ""]
    (out / "metrics.json").write_text(json.dumps(table, indent=2) + "\n")
    (out / "metrics.md").write_text("\n".join(text))
    return out / "metrics.md"


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = OneLineParser(prog="python -m benchmarks.iqa", description=__doc__.splitlines()[0])
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--records", help="an IQARecord JSONL")
    source.add_argument("--world", type=int, help="export this many world IQA records and use their test split")
    source.add_argument("--dataset", help="a dataset adapter name (needs --root)")
    parser.add_argument("--root", help="the dataset's folder, for --dataset")
    parser.add_argument("--out", required=True)
    parser.add_argument("--split", default="test", help="test, train, or all")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--seed", type=int, default=7, help="world export seed")
    parser.add_argument("--size", type=int, default=32, help="world export image side (the generator's is 32)")
    parser.add_argument("--scorer", default="omniquality-r")
    parser.add_argument("--scorer-model", help="the scorer's model (omniquality-r: 'embedded', a folder or hub id)")
    parser.add_argument("--scorer-kwargs", help='JSON, e.g. {"decoding": "greedy"}')
    args = parser.parse_args(argv)
    args.argv = argv
    from reward_model.data.adapters import ADAPTERS
    from t2i_guidance import registries as scorers

    if args.scorer not in scorers.available_scorers():
        fail(f"unknown scorer {args.scorer!r}; available: {', '.join(scorers.available_scorers())}")
    if args.dataset and (args.dataset not in ADAPTERS.names() or not args.root):
        fail(f"--dataset must be one of {', '.join(ADAPTERS.names())} and needs --root")
    if args.records and not Path(args.records).is_file():
        fail(f"records file {args.records!r} does not exist")
    if args.world is not None and args.world < 10:
        fail("--world needs at least 10 records")
    if args.limit is not None and args.limit < 1:
        fail("--limit must be at least 1")
    try:
        if args.scorer_kwargs:
            json.loads(args.scorer_kwargs)
    except json.JSONDecodeError as exc:
        fail(f"--scorer-kwargs is not JSON: {exc}")
    try:
        path = run(args)
    except (ValueError, FileNotFoundError) as exc:
        fail(str(exc), code=1)
    print(path.read_text())
    return 0


if __name__ == "__main__":
    sys.exit(main())
