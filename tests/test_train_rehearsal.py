"""The cluster rehearsal on CPU (slow: several minutes on 2 cores; run with --runslow).

4 processes under accelerate (gloo), the 7B configs' structure, SIGKILL after a checkpoint, resume.
Its last result is kept in benchmarks/results/rehearsal_multiprocess.json.
"""

import json
from pathlib import Path

import pytest

RESULT = Path(__file__).resolve().parents[1] / "benchmarks" / "results" / "rehearsal_multiprocess.json"


@pytest.mark.slow
def test_four_processes_killed_and_resumed_match_an_uninterrupted_run(tmp_path):
    from benchmarks.rehearsal_multiprocess import passed, rehearse

    result = rehearse(tmp_path)
    result["passed"] = passed(result)
    result["command"] = "python -m pytest -q --runslow tests/test_train_rehearsal.py"
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    for name, stage in result["stages"].items():
        once = stage["every_record_once_per_epoch"]
        assert all(once) if isinstance(once, list) else once, name
        assert not stage["kill"]["had_finished"], name  # the kill landed mid-run
        assert stage["killed_run_matches_before_checkpoint"] and stage["resumed_run_replays_the_rest_in_order"], name
        assert stage["weights_moved_from_base"], name
        assert stage["final_weights_max_abs_difference_resumed_vs_uninterrupted"] <= 1e-6, name
    assert result["passed"]
