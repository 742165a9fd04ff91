"""The launcher's environment: rank, world size, local rank and device of this process; waiting for the others."""

import pytest

from reward_model.launch import LaunchError, LaunchInfo, device_for, launch_info, process_device, wait_until


def test_one_process_when_no_launcher_set_anything(monkeypatch):
    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    info = launch_info()
    assert info == LaunchInfo(0, 1, 0) and not info.distributed and info.main


def test_torchrun_variables_are_read(monkeypatch):
    monkeypatch.setenv("RANK", "5")
    monkeypatch.setenv("WORLD_SIZE", "8")
    monkeypatch.setenv("LOCAL_RANK", "1")
    info = launch_info()
    assert info == LaunchInfo(5, 8, 1) and info.distributed and not info.main


def test_local_rank_defaults_to_the_rank():
    assert launch_info({"RANK": "1", "WORLD_SIZE": "2"}) == LaunchInfo(1, 2, 1)


@pytest.mark.parametrize("environ", [{"RANK": "2", "WORLD_SIZE": "2"}, {"RANK": "x", "WORLD_SIZE": "2"},
                                     {"WORLD_SIZE": "0"}, {"RANK": "0", "WORLD_SIZE": "2", "LOCAL_RANK": "-1"}])
def test_bad_variables_are_one_line(environ):
    with pytest.raises(LaunchError) as error:
        launch_info(environ)
    assert "\n" not in str(error.value)


def test_each_process_gets_its_own_gpu_or_the_cpu():
    info = LaunchInfo(3, 4, 1)
    assert device_for(info, cuda_available=True) == "cuda:1"
    assert device_for(info, cuda_available=False) == "cpu"
    assert process_device(None, info, cuda_available=True) == "cuda:1"
    assert process_device("cuda", info, cuda_available=True) == "cuda:1"
    assert process_device("cuda:0", info, cuda_available=True) == "cuda:0"  # asked for: kept
    assert process_device("cpu", info, cuda_available=True) == "cpu"
    assert process_device(None, LaunchInfo(), cuda_available=True) is None  # one process: as today
    assert process_device("cuda", LaunchInfo(), cuda_available=True) == "cuda"


def test_waiting_ends_when_nothing_is_missing_or_says_what_is():
    left = [["b", "c"], ["c"], []]
    wait_until(lambda: left.pop(0), timeout=5, what="x", interval=0.01)
    assert left == []
    with pytest.raises(LaunchError, match=r"waited 0.05 s for the shards; still missing: a, b"):
        wait_until(lambda: ["a", "b"], timeout=0.05, what="the shards", interval=0.01)
