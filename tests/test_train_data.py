from pathlib import Path

import pytest

from reward_model.data.adapters import ADAPTERS, EXPECTED_FILES, convert, main
from reward_model.data.schema import read_records

FIXTURES = Path(__file__).parent / "fixtures" / "datasets"


def records(name):
    return list(ADAPTERS.get(name)(FIXTURES / name))


def test_every_adapter_has_a_fixture_and_documents_its_files():
    assert set(ADAPTERS.names()) == set(EXPECTED_FILES)
    for name in ADAPTERS.names():
        found = records(name)
        assert found, name
        # a source is the adapter's name, or NAME:GROUP where records form groups (one pick of the artist's)
        assert all(0.0 <= r.label <= 5.0 and r.source.split(":")[0] == name for r in found)
        assert all(Path(r.image).is_absolute() for r in found)


def test_koniq_rescales_mos_and_keeps_the_official_split():
    found = records("koniq10k")
    assert [r.label for r in found] == pytest.approx([2.5, 2.6125, 3.3375, 1.8375])  # (MOS - 1) / 4 * 5
    assert [r.split for r in found] == ["train", "test", "val", "train"]
    assert found[0].image.endswith("1024x768/10004473376.jpg") and found[0].task == "technical"


def test_spaq_reads_the_spreadsheet():
    found = records("spaq")
    assert [r.label for r in found] == pytest.approx([42.65 / 20, 76.2 / 20])
    assert found[0].image.endswith("TestImage/00001.jpg")


def test_kadid_splits_by_reference_image():
    found = records("kadid10k")
    assert found[0].label == pytest.approx((4.57 - 1) / 4 * 5)
    assert found[0].split == found[1].split  # same reference I01


def test_ava_uses_the_mean_vote():
    first = records("ava")[0]
    counts = [0, 1, 5, 17, 38, 36, 15, 6, 5, 1]
    mean = sum((i + 1) * c for i, c in enumerate(counts)) / sum(counts)
    assert first.label == pytest.approx((mean - 1) / 9 * 5, abs=1e-4)
    assert first.task == "aesthetic" and first.image.endswith("images/953619.jpg")


def test_agiqa_gives_a_technical_and_an_alignment_record_per_image():
    found = records("agiqa3k")
    assert [r.task for r in found] == ["technical", "alignment"] * 2
    assert found[1].prompt == "statue of a man" and found[1].label == pytest.approx(1.2361)
    assert found[3].prompt == "a cat sitting on a red chair, oil painting"


def test_evalmuse_averages_annotators_and_keeps_train_and_test():
    found = records("evalmuse")
    assert [r.split for r in found] == ["train", "train", "test"]
    assert found[0].label == pytest.approx((13 / 3 - 1) / 4 * 5, abs=1e-4)
    assert all(r.task == "alignment" and r.prompt for r in found)


def test_livec_skips_its_seven_training_images_unless_asked():
    livec = records("livec")
    assert [Path(r.image).name for r in livec] == ["10.JPG", "100.bmp"]
    assert livec[0].label == pytest.approx(25.3 / 20) and Path(livec[0].image).parent.name == "Images"
    with_training = list(ADAPTERS.get("livec")(FIXTURES / "livec", keep_training_images=True))
    assert len(with_training) == 9 and with_training[0].label == pytest.approx(63.9 / 20)
    assert all(Path(r.image).parent.name == "trainingImages" for r in with_training[:7])


def test_evalmuse_carves_a_test_split_when_the_test_file_has_no_labels(tmp_path):
    import json

    train = [{"prompt_id": f"{i:05d}", "prompt": f"prompt {i}", "img_path": f"images/{i}_{m}.png",
              "total_score": [3, 4]} for i in range(40) for m in ("a", "b")]
    (tmp_path / "train_list.json").write_text(json.dumps(train))
    (tmp_path / "test.json").write_text(json.dumps([{"prompt_id": "99999", "prompt": "x", "img_path": "t.png"}]))
    found = list(ADAPTERS.get("evalmuse")(tmp_path, test_fraction=0.25))
    assert len(found) == 80  # the unlabelled test entry gives nothing
    splits = {r.split for r in found}
    assert splits == {"train", "test"}
    by_prompt = {}
    for r in found:
        by_prompt.setdefault(r.prompt, set()).add(r.split)
    assert all(len(s) == 1 for s in by_prompt.values())  # one prompt's images never straddle the split


def test_scores_outside_the_nominal_range_stop_the_conversion(tmp_path):
    (tmp_path / "data.csv").write_text("name,prompt,mos_quality,mos_align\nx.jpg,a cat,52.0,3.0\n")
    with pytest.raises(ValueError, match=r"52.0 \(agiqa3k x.jpg, mos_quality\) is outside the nominal range 0..5"):
        list(ADAPTERS.get("agiqa3k")(tmp_path))
    assert main(["agiqa3k", str(tmp_path), "--out", str(tmp_path / "x.jsonl")]) == 2


def test_tid2013():
    tid = records("tid2013")
    assert tid[0].label == pytest.approx(5.51429 / 9 * 5, abs=1e-4)


def test_convert_writes_jsonl_and_filters_splits(tmp_path):
    out = tmp_path / "koniq.jsonl"
    assert convert("koniq10k", FIXTURES / "koniq10k", out, splits=("train",)) == 2
    assert [r.split for r in read_records(out)] == ["train", "train"]


def test_cli_reports_missing_files_in_one_line(tmp_path, capsys):
    assert main(["koniq10k", str(tmp_path), "--out", str(tmp_path / "x.jsonl")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "koniq10k_distributions_sets.csv" in err
