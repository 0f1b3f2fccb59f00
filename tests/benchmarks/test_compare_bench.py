import compare_bench
import pytest

pytestmark = pytest.mark.smoke


def test_times_compare_on_two_tiny_runs(capsys):
    compare_bench.main(["--videos", "2", "--unique-videos", "1", "--frames", "2", "--tracks", "1",
                        "--height", "32", "--width", "32", "--pixel-size", "16", "16", "--categories", "2",
                        "--false-positives", "0", "1", "--samples", "2", "--scale-samples", "1", "--repeats", "1"])
    out = capsys.readouterr().out
    assert "tubelets compare, 2 resamples" in out
    assert out.count("compare at ") == 2  # the pixel pair: 16x16 and 32x32
