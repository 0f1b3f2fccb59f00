import types

import apache_beam as beam
from apache_beam.metrics import Metrics
from apache_beam.options.pipeline_options import PipelineOptions

from tubelets.pipelines.runner import COUNTERS, run_to_end, waves


class CountThings(beam.DoFn):
    """Counts as the pipeline stages do: a video per element, its value in frames, 0 is a dead letter."""

    def process(self, frames: int):
        Metrics.counter("tubelets", "videos").inc()
        Metrics.counter("tubelets", "frames").inc(frames)
        Metrics.counter("elsewhere", "frames").inc(1000)  # another namespace: not ours
        if frames == 0:
            Metrics.counter("tubelets", "dead_letters").inc()
        yield frames


def count_graph(p, spec):
    return p | beam.Create([3, 4, 0]) | beam.ParDo(CountThings())


def test_run_to_end_runs_the_graph_and_reports_the_counters(capsys):
    spec = types.SimpleNamespace(run_id="r7", run_url="/out/r7")
    options = PipelineOptions(["--runner=DirectRunner", "--direct_running_mode=in_memory"])
    counts = run_to_end(spec, options, count_graph)
    assert counts == {"videos": 3, "frames": 7, "proposals": 0, "tubelets": 0, "dead_letters": 1}
    assert set(counts) == set(COUNTERS)
    stderr = capsys.readouterr().err
    assert "run r7: 3 videos, 7 frames" in stderr and "0 proposals, 0 tubelets" in stderr
    assert "1 input(s) went to dead letters: see /out/r7/dead_letters/" in stderr
    assert stderr.rstrip().endswith("output: /out/r7")


def test_run_to_end_says_nothing_of_dead_letters_when_there_are_none(capsys):
    spec = types.SimpleNamespace(run_id="r8", run_url="/out/r8")
    options = PipelineOptions(["--runner=DirectRunner", "--direct_running_mode=in_memory"])
    counts = run_to_end(spec, options, lambda p, _: p | beam.Create([2]) | beam.ParDo(CountThings()))
    assert counts["dead_letters"] == 0 and "dead letters" not in capsys.readouterr().err


class NoMetricsResult:
    """A runner's result without metrics (Beam's Dask runner 2.78), holding a client to close."""

    def __init__(self):
        self.client = types.SimpleNamespace(closed=False, cluster=None)
        self.client.close = lambda: setattr(self.client, "closed", True)

    def wait_until_finish(self):
        return "DONE"

    def metrics(self):
        raise NotImplementedError("collecting metrics will come later!")


def test_counters_of_a_runner_without_metrics_come_from_the_run_folder(tmp_path, capsys, monkeypatch):
    from tubelets.transforms.dead_letters import dead_letter
    from tubelets.transforms.outputs import WriteRunFiles, dead_letter_file

    provenance = {"config_hash": "h", "checkpoint_id": "c", "tracker": "iou", "input": "in", "task": "vis"}
    row = {"video": "v", "tubelet_id": 1, "category_id": 1, "category_name": "a", "score": 0.5, "first_frame": 0,
           "last_frame": 0, "frame_count": 0, "video_length": 1, "frames": [], "other_classes": []}
    dead = dead_letter("bad.mp4", "decode", ValueError("not a video")).value
    with beam.Pipeline(options=PipelineOptions(["--runner=DirectRunner", "--direct_running_mode=in_memory"])) as p:
        files = p | "Videos" >> beam.Create([("v1", [row, row], {"video_frames": 7}),
                                             ("v2", [row], {"video_frames": 5}),
                                             ("old", [row], {"video_frames": 9})])
        files | "Tubelets" >> WriteRunFiles(str(tmp_path), "r9", "tubelets", provenance)
        (p | "Dead" >> beam.Create([dead_letter_file(dead)])
         | WriteRunFiles(str(tmp_path), "r9", "dead_letters", provenance))
    spec = types.SimpleNamespace(run_id="r9", run_url=f"{tmp_path}/r9", output_url=str(tmp_path),
                                 done=frozenset({"old"}))
    result = NoMetricsResult()
    monkeypatch.setattr(beam.Pipeline, "run", lambda self: result)
    counts = run_to_end(spec, PipelineOptions([]), lambda p, _: p | beam.Create([1]))
    # "old" was finished by an earlier attempt: a resumed run's counters are this attempt's
    assert counts == {"videos": 2, "frames": 12, "proposals": None, "tubelets": 3, "dead_letters": 1}
    assert result.client.closed  # the runner's client is closed within the run
    stderr = capsys.readouterr().err
    assert "run r9: 2 videos, 12 frames (" in stderr and " proposals" not in stderr.split("(this")[0]
    assert "3 tubelets in " in stderr and "not counted: proposals" in stderr


def test_waves_split_the_inputs_still_to_run_and_count_the_others_done():
    from tubelets.pipelines.run_setup import RunSpec
    from tubelets.transforms.inputs import VideoInput

    from tubelets.runs import video_file_stem

    inputs = tuple(VideoInput(f"/in/v{index}.mp4", f"/in/v{index}.mp4") for index in range(5))
    stem = {index: video_file_stem(f"/in/v{index}.mp4") for index in range(5)}
    spec = RunSpec("/in", "/out", "r", {}, "c", {}, done=frozenset({stem[1]}), inputs=inputs)
    assert list(waves(spec, 0)) == [spec] and list(waves(spec, 4)) == [spec]  # no waves, or all in one
    parts = list(waves(spec, 3))
    assert [[item.key for item in part.inputs] for part in parts] == [["/in/v0.mp4", "/in/v2.mp4", "/in/v3.mp4"],
                                                                      ["/in/v4.mp4"]]
    assert all(part.done == {stem[1]} for part in parts)  # the resumed run's: skipped, and left out of its counts
    assert {part.run_id for part in parts} == {"r"}
