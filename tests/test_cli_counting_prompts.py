"""Counting prompts ("three red squares", the world's extended grammar) are drawable exactly when the world
generator's saved tokenizer knows every word of them (issue 12, item 8, after the generator learnt counts):
read from the folder, no model loaded; a generator built before counts still refuses them in one line."""

from __future__ import annotations

import pytest
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers
from transformers import PreTrainedTokenizerFast

from t2i_guidance import bestofn
from t2i_guidance.world.captions import extended_vocabulary, parse_extended_prompt, vocabulary
from t2i_guidance.world.pipeline import MAX_TOKENS, PAD, UNK, WorldDiffusionPipeline
from t2i_guidance.world.plugin import draws_counts, world_prompt_problem

COUNTING = ["three red squares", "two small blue circles on a white background",
            "four green triangles on a black background"]
SMALL = (8, 16, 16)


def training_grammar_tokenizer() -> PreTrainedTokenizerFast:
    """The tokenizer a world generator had before counting captions: the training grammar's words only."""
    words = [PAD, UNK, *vocabulary()]
    core = Tokenizer(models.WordLevel({w: i for i, w in enumerate(words)}, unk_token=UNK))
    core.normalizer = normalizers.Lowercase()
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token=PAD, unk_token=UNK, model_max_length=MAX_TOKENS)


@pytest.fixture(scope="module")
def counting_generator(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("counting") / "gen"
    WorldDiffusionPipeline.from_config_untrained(block_out_channels=SMALL).save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def older_generator(tmp_path_factory) -> str:
    folder = tmp_path_factory.mktemp("older") / "gen"
    pipeline = WorldDiffusionPipeline.from_config_untrained(block_out_channels=SMALL)
    pipeline.register_modules(tokenizer=training_grammar_tokenizer())
    pipeline.save_pretrained(folder)
    return str(folder)


@pytest.fixture
def no_model_may_load(monkeypatch):
    monkeypatch.setattr("t2i_guidance.generator.load_pipeline", lambda *a, **k: pytest.fail("model loaded"))
    monkeypatch.setattr("t2i_guidance.registries.build_scorer", lambda *a, **k: pytest.fail("scorer loaded"))


def test_the_saved_tokenizer_decides(counting_generator, older_generator):
    assert draws_counts(counting_generator) and not draws_counts(older_generator)
    for prompt in COUNTING:
        parse_extended_prompt(prompt)  # the extended grammar reads it
        assert world_prompt_problem(prompt, counting_generator) is None, prompt
        problem = world_prompt_problem(prompt, older_generator)
        assert problem and "not trained on counts" in problem, problem
    # Words neither tokenizer knows, and sentences neither grammar reads, stay refused.
    assert "unknown word: cat" in world_prompt_problem("three cats", counting_generator)
    assert world_prompt_problem("two red squares above a blue circle", counting_generator)  # no relation for groups
    assert world_prompt_problem("three red square", counting_generator)  # number and noun disagree
    assert set(extended_vocabulary()) - set(vocabulary())  # the count words really are new words


def test_the_cli_accepts_counts_only_from_a_generator_that_knows_them(
        tmp_path, capsys, counting_generator, older_generator, no_model_may_load):
    with pytest.raises(SystemExit) as refused:
        bestofn.main(["--prompt", COUNTING[0], "--generator", older_generator, "--scorer", "oracle",
                      "--out", str(tmp_path / "a")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert refused.value.code == 2 and len(lines) == 1 and lines[0].startswith("error:"), lines
    assert "unknown words: three, squares" in lines[0] and "not trained on counts" in lines[0]
    # Passing every check means reaching the model load, which the fixture turns into a failure.
    with pytest.raises(pytest.fail.Exception, match="loaded"):
        bestofn.main(["--prompt", COUNTING[1], "--generator", counting_generator, "--scorer", "oracle",
                      "--out", str(tmp_path / "b")])


def test_a_counting_run_is_judged_by_the_oracles(tmp_path, counting_generator):
    """End to end on the counting generator: the oracles read the count from the prompt (no parse error)."""
    code = bestofn.main(["--prompt", COUNTING[0], "--generator", counting_generator, "--scorer", "oracle",
                         "--n", "2", "--steps", "2", "--out", str(tmp_path / "run"), "--quiet"])
    import json

    result = json.loads((tmp_path / "run" / "result.json").read_text())
    assert code == 0
    for candidate in result["candidates"]:
        alignment = candidate["scores"]["alignment"]
        assert alignment["status"] == "ok", alignment
        assert "three red squares" in alignment["rationale"], alignment["rationale"]
