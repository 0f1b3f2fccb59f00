import pytest
import scale_bench

pytestmark = pytest.mark.smoke


def test_one_bucket_of_one_tiny_clip_on_the_direct_runner(tmp_path, capsys):
    status = scale_bench.main(["--sizes", "1", "--engines", "direct", "--workers", "1", "--frames", "2",
                               "--width", "32", "--height", "32", "--clips", "1", "--no-warmup",
                               "--work", str(tmp_path), "--json", str(tmp_path / "rows.json")])
    assert status == 0
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines() if line.startswith("direct")]
    assert [(row[0], row[1], row[2]) for row in rows] == [("direct", "1", "2")]  # engine, videos, frames
    assert (tmp_path / "rows.json").exists()
