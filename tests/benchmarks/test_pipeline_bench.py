import pipeline_bench
import pytest

pytestmark = pytest.mark.smoke


def test_beam_and_the_bare_stages_do_the_same_work(tiny_shapes, tmp_path, bench, capsys):
    # In memory only: a worker process would add its start-up (several seconds) to a smoke test.
    pipeline_bench.main([str(tiny_shapes), "--modes", "in_memory", "--work", str(tmp_path),
                         *bench.as_set_args([*bench.TINY_DETECTOR, "tracker.name=iou"])])
    rows = {row[0]: dict(zip(pipeline_bench.HEADER, row))
            for row in bench.markdown_rows(capsys.readouterr().out, "")}
    bare, beam = rows["bare: decode + detect"], rows["Beam: MatchInputs -> Decode -> Proposals, in memory"]
    assert bare["frames"] == beam["frames"] == "56"
    assert bare["proposals"] == beam["proposals"] != ""
    bare, segment = rows["bare: decode + detect + track + write"], rows["tubelets segment, in memory"]
    assert bare["tubelets"] == segment["tubelets"] != ""
    assert bare["ratio"] == bare["CPU ratio"] == "1.00"
    assert float(segment["ratio"]) > 0 and float(segment["CPU ratio"]) > 0
    assert list(tmp_path.iterdir()) == []  # the outputs went with their temporary folder


def test_an_unknown_mode_is_refused():
    with pytest.raises(SystemExit):
        pipeline_bench.main(["--modes", "in_memory,threads"])
