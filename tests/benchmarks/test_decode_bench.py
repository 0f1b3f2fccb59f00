import decode_bench
import pytest

pytestmark = pytest.mark.smoke


def test_every_case_of_each_size_in_one_table(tmp_path, bench, capsys):
    decode_bench.main(["--sizes", "64x48,96x64", "--frames", "12", "--consumer-ms", "1", "--repeats", "1",
                       "--work", str(tmp_path)])
    out = capsys.readouterr().out
    assert "12 frames of H.264 CRF 23 (64x48 " in out
    for size in ("64x48", "96x64"):
        rows = {row[1]: dict(zip(decode_bench.HEADER, row)) for row in bench.markdown_rows(out, size)}
        assert len(rows) == 8
        bare = rows["ffmpeg -> /dev/null, decoder threads auto"]
        alone = rows["caller alone: 1 ms sleep a frame"]
        assert bare["ratio"] == alone["ratio"] == "1.00"
        assert all(float(row["frames/s"]) > 0 for row in rows.values())
        assert {row["frames"] for case, row in rows.items() if not case.startswith("probe")} == {"12"}
        # The caller's sleeps alone are the least that decoding for it can take.
        assert float(rows["caller + iter_frames, read ahead"]["wall s"]) >= float(alone["wall s"])
    assert list(tmp_path.iterdir()) == []  # the videos went with their temporary folder


def test_an_odd_size_is_refused():
    with pytest.raises(SystemExit):
        decode_bench.main(["--sizes", "65x48"])
