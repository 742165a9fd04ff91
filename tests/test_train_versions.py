"""The version pins of the training extras agree with what is installed and with TRL's own vLLM range."""

import re
import tomllib
from pathlib import Path

import trl
from packaging.specifiers import SpecifierSet
from packaging.version import Version

PYPROJECT = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())
EXTRAS = PYPROJECT["project"]["optional-dependencies"]


def spec(extra: str, name: str) -> SpecifierSet:
    (entry,) = [e for e in EXTRAS[extra] if re.match(rf"{name}\b", e)]
    return SpecifierSet(entry[len(name):])


def test_trl_is_pinned_to_the_tested_minor_version_with_an_upper_bound():
    pin = spec("train", "trl")
    assert Version(trl.__version__) in pin  # the subclass overrides private TRL methods: tested here
    assert any(s.operator == "<" for s in pin)
    assert Version("1.17.0") not in pin and Version("2.0") not in pin


def test_vllm_range_is_inside_what_trl_accepts():
    source = (Path(trl.__file__).parent / "import_utils.py").read_text()
    low, high = re.search(r'Version\("([\d.]+)"\) <= _vllm_base_version <= Version\("([\d.]+)"\)', source).groups()
    pin = spec("vllm", "vllm")
    assert Version(low) in pin and Version(high) in pin
    assert Version("0.21.9") not in pin
    next_minor = Version(f"0.{Version(high).release[1] + 1}.0")
    assert next_minor not in pin
