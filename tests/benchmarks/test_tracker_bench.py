import json

import pytest
import tracker_bench

pytestmark = pytest.mark.smoke


def test_times_tracking_and_measures_memory_in_fresh_processes(capsys):
    tracker_bench.main(["--threads", "1", "--size", "64x48", "--frames", "6"])
    printed = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    timing = printed[0]["timing"]
    assert timing["size"] == "64x48" and timing["proposal_ms_per_frame"] > 0
    assert all(timing[f"track_ms_per_frame_{count}"] > 0 for count in (1, 4, 16))
    windows = [each["memory"]["feature_window"] for each in printed[1:]]
    assert windows == [32, 6]  # the configured window, then one holding every frame
    assert all(each["memory"]["frames"] == 6 and each["memory"]["tubelets"] > 0 for each in printed[1:])
