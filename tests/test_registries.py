"""One registry mechanism: a name is registered once, an unknown name lists what there is, and plugins
(the embedded world among them) are found through the `t2i_guidance.plugins` entry-point group."""

from __future__ import annotations

import pytest

from reward_model.interface import LazyRegistry


def test_a_second_registration_under_a_name_raises_unless_it_is_the_same_target():
    registry = LazyRegistry("thing")
    registry.add("a", "json:dumps")
    registry.add("a", "json:dumps")  # the same target again: nothing to do
    assert registry.get("a").__name__ == "dumps"
    registry.add("a", registry.get("a"))  # the object the string named is the same target too
    with pytest.raises(ValueError, match="already registered"):
        registry.add("a", "json:loads")


def test_an_unknown_name_lists_the_available_ones():
    registry = LazyRegistry("thing")
    registry.add("b", 2)
    registry.add("a", 1)
    with pytest.raises(KeyError, match="unknown thing 'c'; available: a, b"):
        registry.get("c")


def test_loaders_run_once_before_the_first_lookup():
    registry = LazyRegistry("thing")
    calls = []
    registry.add_loader(lambda: calls.append(registry.add("late", 3)))
    assert calls == []
    assert registry.names() == ["late"] and registry.get("late") == 3 and calls == [3]


def test_the_world_registers_as_a_plugin():
    from t2i_guidance.registries import PIPELINES, REWRITERS, available_scorers, declared_plugins

    assert "t2i_guidance.world.plugin:register" in declared_plugins()
    assert "oracle" in available_scorers() and "world" in REWRITERS.names()
    family = PIPELINES.get("WorldDiffusionPipeline")
    assert family.default_rewriter == "world" and family.prompt_problem.endswith(":cannot_draw")


def test_the_core_names_no_plugin():
    from pathlib import Path

    import t2i_guidance

    core = Path(t2i_guidance.__file__).parent
    for path in [*core.glob("*.py"), *(core / "search").glob("*.py")]:
        text = path.read_text()
        assert "t2i_guidance.world" not in text and "WorldDiffusionPipeline" not in text, path
