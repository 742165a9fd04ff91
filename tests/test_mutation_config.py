"""The mutation-testing command names real modules and tests, and hands mutmut the settings it reads."""

from __future__ import annotations

import configparser

from benchmarks.mutation import CORE, ROOT, Target, mutant_globs, score, setup_cfg


def test_every_core_module_and_test_file_exists():
    for module, target in CORE.items():
        assert (ROOT / module).is_file(), module
        files = [a for a in target.tests if a.endswith(".py")]
        assert files and all((ROOT / f).is_file() for f in files), module
        source = (ROOT / module).read_text()
        for name in target.functions:
            owner, _, method = name.partition(".")
            assert (f"\nclass {owner}" in source and (not method or f"\n    def {method}(" in source)
                    or f"\ndef {name}(" in source), (module, name)


def test_setup_cfg_is_what_mutmut_reads():
    target = Target(("tests/test_train_grpo.py", "-k", "std_filter or gate"), ("std_filter_keep",))
    parser = configparser.ConfigParser()
    parser.read_string(setup_cfg("reward_model/grpo.py", target))
    section = parser["mutmut"]
    assert section["source_paths"] == "reward_model/" and section["only_mutate"] == "reward_model/grpo.py"
    # multi-line values are one argument a line, as mutmut splits them
    assert [x for x in section["pytest_add_cli_args_test_selection"].split("\n") if x] == list(target.tests)
    assert [x for x in section["also_copy"].split("\n") if x] == ["t2i_guidance/", "benchmarks/", "apps/"]


def test_globs_pick_the_named_functions_or_the_whole_module():
    assert mutant_globs("reward_model/grpo.py", Target((), ("std_filter_keep",))) == [
        "reward_model.grpo.x_std_filter_keep__mutmut_*"]
    assert mutant_globs("t2i_guidance/search/base.py", Target(())) == ["t2i_guidance.search.base.*"]
    assert mutant_globs("benchmarks/run_engine.py", Target((), ("Shard", "Runner.run"))) == [
        "benchmarks.run_engine.xǁShardǁ*", "benchmarks.run_engine.xǁRunnerǁrun__mutmut_*"]


def test_score_counts_unreached_mutants_as_survivors_and_skipped_ones_not_at_all():
    assert score({"killed": 8, "timeout": 1, "survived": 1, "no tests": 2, "skipped": 5}) == (9, 12)
