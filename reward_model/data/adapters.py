"""Adapters from public IQA datasets' own label files to IQARecord JSONL.

Each adapter reads a local copy (`root`) laid out as the dataset ships it, rescales the score to 0..5
from the dataset's nominal range, and takes the official split when the dataset has one (otherwise a
stable hash split). Image paths are written absolute, so the JSONL works from anywhere.

    python -m reward_model.data.adapters koniq10k /data/koniq10k --out data/koniq.jsonl
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

from reward_model.data.schema import IQARecord, rescale, write_records
from reward_model.interface import LazyRegistry

# Files each adapter expects under the dataset root (also printed by --help; the README lists them).
EXPECTED_FILES = {
    "koniq10k": "koniq10k_distributions_sets.csv (image_name, MOS on 1..5, set) + 1024x768/<image_name>",
    "spaq": "Annotations/MOS and Image attribute scores.xlsx (or .csv: Image name, MOS on 0..100) "
    "+ TestImage/<Image name>",
    "kadid10k": "dmos.csv (dist_img, ref_img, dmos on 1..5) + images/<dist_img>",
    "ava": "AVA.txt (index, image id, 10 vote counts for 1..10, tags, challenge) + images/<id>.jpg",
    "agiqa3k": "data.csv (name, prompt, mos_quality, mos_align on 0..5) + images/<name>",
    "evalmuse": "train_list.json and/or test.json (prompt_id, prompt, img_path, total_score on 1..5) + <img_path>",
    "livec": "Data/AllImages_release.mat, Data/AllMOS_release.mat (MOS on 0..100) + Images/<name> "
    "(the first 7 entries are the training images, in Images/trainingImages/<name>)",
    "tid2013": "mos_with_names.txt (MOS on 0..9, image name) + distorted_images/<name>",
    "preferences": "preferences.jsonl + pictures/ (the demo's 'keep my picks'; see reward_model.data.preferences)",
}


def hash_split(name: str, test_fraction: float) -> str:
    """A stable train/test assignment for datasets without an official split."""
    digest = int.from_bytes(hashlib.sha1(name.encode()).digest()[:4], "big")
    return "test" if digest / 2**32 < test_fraction else "train"


def _label(value: float, low: float, high: float, where: str = "") -> float:
    """The score rescaled to 0..5; a score outside the dataset's nominal range is an error, not a label."""
    value = float(value)
    if not low <= value <= high:
        place = f" {where}" if where else ""
        raise ValueError(f"score {value}{place} is outside the nominal range {low:g}..{high:g}: "
                         "wrong file or wrong column?")
    return round(rescale(value, low, high), 4)


def _require(path: Path) -> Path:
    if not path.exists():
        raise FileNotFoundError(f"expected {path} (see EXPECTED_FILES)")
    return path


def koniq10k(root: Path, test_fraction: float = 0.2) -> Iterator[IQARecord]:
    with open(_require(root / "koniq10k_distributions_sets.csv"), newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            split = {"training": "train", "validation": "val", "test": "test"}[row["set"].strip()]
            yield IQARecord(
                image=str(root / "1024x768" / row["image_name"]),
                task="technical",
                label=_label(float(row["MOS"]), 1.0, 5.0),
                source="koniq10k",
                split=split,
            )


def _spaq_rows(root: Path) -> Iterator[tuple[str, float]]:
    xlsx = root / "Annotations" / "MOS and Image attribute scores.xlsx"
    if xlsx.exists():
        from openpyxl import load_workbook  # optional: only SPAQ ships a spreadsheet

        sheet = load_workbook(xlsx, read_only=True).active
        rows = sheet.iter_rows(values_only=True)
        header = [str(cell).strip() for cell in next(rows)]
        name_col, mos_col = header.index("Image name"), header.index("MOS")
        for row in rows:
            if row[name_col] is not None:
                yield str(row[name_col]), float(row[mos_col])
        return
    with open(_require(xlsx.with_suffix(".csv")), newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            yield row["Image name"], float(row["MOS"])


def spaq(root: Path, test_fraction: float = 0.2) -> Iterator[IQARecord]:
    for name, mos in _spaq_rows(root):
        yield IQARecord(
            image=str(root / "TestImage" / name),
            task="technical",
            label=_label(mos, 0.0, 100.0),
            source="spaq",
            split=hash_split(name, test_fraction),
        )


def kadid10k(root: Path, test_fraction: float = 0.2) -> Iterator[IQARecord]:
    with open(_require(root / "dmos.csv"), newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            # Split by reference image, so distortions of one scene never straddle train and test.
            yield IQARecord(
                image=str(root / "images" / row["dist_img"]),
                task="technical",
                label=_label(float(row["dmos"]), 1.0, 5.0),
                source="kadid10k",
                split=hash_split(row["ref_img"], test_fraction),
            )


def ava(root: Path, test_fraction: float = 0.2) -> Iterator[IQARecord]:
    with open(_require(root / "AVA.txt"), encoding="utf-8") as handle:
        for line in handle:
            fields = line.split()
            if len(fields) < 12:
                continue
            image_id, counts = fields[1], [int(x) for x in fields[2:12]]
            if sum(counts) == 0:
                continue
            mean = sum(score * n for score, n in zip(range(1, 11), counts, strict=True)) / sum(counts)
            yield IQARecord(
                image=str(root / "images" / f"{image_id}.jpg"),
                task="aesthetic",
                label=_label(mean, 1.0, 10.0),
                source="ava",
                split=hash_split(image_id, test_fraction),
            )


def agiqa3k(root: Path, test_fraction: float = 0.2) -> Iterator[IQARecord]:
    """Two records per image: perceptual quality (technical) and text alignment, both MOS on 0..5.

    Every MOS is checked against 0..5 (a file with another scale stops the conversion with the row named).
    """
    with open(_require(root / "data.csv"), newline="", encoding="utf-8") as handle:
        for row in csv.DictReader(handle):
            image = str(root / "images" / row["name"])
            split = hash_split(row["name"], test_fraction)
            where = f"(agiqa3k {row['name']}, mos_quality)"
            yield IQARecord(image=image, task="technical", label=_label(row["mos_quality"], 0.0, 5.0, where),
                            source="agiqa3k", split=split)
            where = f"(agiqa3k {row['name']}, mos_align)"
            yield IQARecord(image=image, task="alignment", label=_label(row["mos_align"], 0.0, 5.0, where),
                            prompt=row["prompt"], source="agiqa3k", split=split)


def _mean_score(value: object) -> float:
    if isinstance(value, list):
        return sum(float(v) for v in value) / len(value)
    return float(value)


def evalmuse(root: Path, test_fraction: float = 0.2) -> Iterator[IQARecord]:
    """Alignment records from EvalMuse; annotators' total scores are averaged.

    The public test.json comes without labels (they are held out), so it yields nothing. When no labelled
    test entry exists, a test split is carved out of the training list by a stable hash of the prompt id:
    all images of one prompt fall on the same side.
    """
    files = [(name, split) for name, split in (("train_list.json", "train"), ("test.json", "test"))
             if (root / name).exists()]
    if not files:
        raise FileNotFoundError(f"expected {root}/train_list.json or {root}/test.json")
    entries = [(entry, split) for name, split in files
               for entry in json.loads((root / name).read_text(encoding="utf-8"))
               if entry.get("total_score") is not None]  # the test file may come without labels
    carve_test = not any(split == "test" for _, split in entries)
    for entry, split in entries:
        if carve_test:
            split = hash_split(str(entry.get("prompt_id", entry["prompt"])), test_fraction)
        yield IQARecord(
            image=str(root / entry["img_path"]),
            task="alignment",
            label=_label(_mean_score(entry["total_score"]), 1.0, 5.0, f"(evalmuse {entry['img_path']})"),
            prompt=entry["prompt"],
            source="evalmuse",
            split=split,
        )


LIVEC_TRAINING_IMAGES = 7  # the release lists its 7 training images first, stored in Images/trainingImages/


def livec(root: Path, test_fraction: float = 0.2, keep_training_images: bool = False) -> Iterator[IQARecord]:
    """LIVE Challenge: the 1,162 rated photographs (the usual protocol); the 7 training images are skipped
    unless `keep_training_images`, then read from Images/trainingImages/."""
    from scipy.io import loadmat

    names = loadmat(_require(root / "Data" / "AllImages_release.mat"))["AllImages_release"]
    moses = loadmat(_require(root / "Data" / "AllMOS_release.mat"))["AllMOS_release"]
    names = [str(cell[0][0]) for cell in names]
    moses = [float(v) for v in moses.reshape(-1)]
    for index, (name, mos) in enumerate(zip(names, moses, strict=True)):
        folder = root / "Images"
        if index < LIVEC_TRAINING_IMAGES:
            if not keep_training_images:
                continue
            folder = folder / "trainingImages"
        yield IQARecord(image=str(folder / name), task="technical",
                        label=_label(mos, 0.0, 100.0, f"(livec {name})"),
                        source="livec", split=hash_split(name, test_fraction))


def tid2013(root: Path, test_fraction: float = 0.2) -> Iterator[IQARecord]:
    with open(_require(root / "mos_with_names.txt"), encoding="utf-8") as handle:
        for line in handle:
            if not line.strip():
                continue
            mos, name = line.split()
            reference = re.match(r"[iI](\d+)", name).group(1)  # split by reference scene
            yield IQARecord(image=str(root / "distorted_images" / name), task="technical",
                            label=_label(float(mos), 0.0, 9.0), source="tid2013",
                            split=hash_split(reference, test_fraction))


ADAPTERS = LazyRegistry("dataset")  # dataset name -> function(root, test_fraction) yielding IQARecords
ADAPTERS.add('koniq10k', koniq10k)
ADAPTERS.add('spaq', spaq)
ADAPTERS.add('kadid10k', kadid10k)
ADAPTERS.add('ava', ava)
ADAPTERS.add('agiqa3k', agiqa3k)
ADAPTERS.add('evalmuse', evalmuse)
ADAPTERS.add('livec', livec)
ADAPTERS.add('tid2013', tid2013)
ADAPTERS.add('preferences', 'reward_model.data.preferences:preferences')


def convert(dataset: str, root: str | Path, out: str | Path, test_fraction: float = 0.2,
            splits: tuple[str, ...] | None = None) -> int:
    """Write `dataset` under `root` as IQARecord JSONL; returns the number of records."""
    if dataset not in ADAPTERS.names():
        raise ValueError(f"unknown dataset {dataset!r}; available: {', '.join(ADAPTERS.names())}")
    records = ADAPTERS.get(dataset)(Path(root).resolve(), test_fraction=test_fraction)
    if splits:
        records = (r for r in records if r.split in splits)
    return write_records(out, records)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="Convert a public IQA dataset's label file to IQARecord JSONL.",
        epilog="Expected files:\n" + "\n".join(f"  {k}: {v}" for k, v in EXPECTED_FILES.items()),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("dataset", choices=ADAPTERS.names())
    parser.add_argument("root", help="the dataset's local folder")
    parser.add_argument("--out", required=True)
    parser.add_argument("--test-fraction", type=float, default=0.2, help="for datasets without a split")
    parser.add_argument("--splits", nargs="*", help="keep only these splits")
    args = parser.parse_args(argv)
    try:
        count = convert(args.dataset, args.root, args.out, args.test_fraction,
                        tuple(args.splits) if args.splits else None)
    except (FileNotFoundError, KeyError, ValueError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"wrote {count} records to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
