"""The one-command rebuild runs its stages in order, each skipped once its output exists."""

from t2i_guidance.world.training import rebuild_scorer


def _flag(args, name):
    return args[args.index(name) + 1]


def test_stages_run_in_order_and_the_224_px_base_starts_from_the_112_px_one(tmp_path, monkeypatch):
    calls = []

    def fake_run(*args):
        calls.append(args)
        module = args[1].rsplit(".", 1)[-1]
        if module == "train_base_vlm":
            (tmp_path / _flag(args, "--out") / "final").mkdir(parents=True)
            (tmp_path / _flag(args, "--out") / "final" / "config.json").write_text("{}")
        if module == "scorer_data":
            (tmp_path / _flag(args, "--out")).mkdir(parents=True)
            (tmp_path / _flag(args, "--out") / "train.jsonl").write_text("")
        if module == "train_scorer":
            (tmp_path / _flag(args, "--out") / "sft").mkdir(parents=True)
            (tmp_path / _flag(args, "--out") / "sft" / "config.json").write_text("{}")
            (tmp_path / _flag(args, "--out") / "cot").mkdir(exist_ok=True)
            (tmp_path / _flag(args, "--out") / "cot" / "train.jsonl").write_text("{}\n")

    monkeypatch.setattr(rebuild_scorer, "_run", fake_run)
    assert rebuild_scorer.main(["--out", str(tmp_path)]) == 0
    modules = [c[1].rsplit(".", 1)[-1] for c in calls]
    assert modules == ["generated_pool", "train_base_vlm", "train_base_vlm", "train_base_vlm", "scorer_data",
                       "train_scorer", "train_scorer"]
    coarse, fine, wide, look, scorer = calls[1], calls[2], calls[3], calls[5], calls[6]
    assert _flag(coarse, "--side") == "112" and "--init-from" not in coarse
    assert _flag(fine, "--side") == "224" and _flag(fine, "--init-from") == str(tmp_path / "base112" / "final")
    assert _flag(wide, "--hidden-size") == "256" and _flag(wide, "--init-from") == str(tmp_path / "base" / "final")
    assert _flag(look, "--base") == str(tmp_path / "base_wide" / "final") and "--look-first" in look
    # the shipped scorer continues the look-first one on the same trajectories, at a lower rate
    assert _flag(scorer, "--base") == str(tmp_path / "look" / "sft") and _flag(scorer, "--sft-lr") == "2e-4"
    assert (tmp_path / "scorer" / "cot" / "train.jsonl").exists() and "--look-first" in scorer

    calls.clear()  # a second call finds every output and only refreshes the (idempotent) picture pool
    assert rebuild_scorer.main(["--out", str(tmp_path)]) == 0
    assert [c[1].rsplit(".", 1)[-1] for c in calls] == ["generated_pool"]
