import pytest
import tracker_validation

pytestmark = pytest.mark.smoke


def test_tracks_a_tiny_set_with_each_tracker_and_compares_them(tmp_path, bench, capsys):
    bench.tiny_set(tmp_path / "shapes-3-1", seed=3)  # the folder validation_sets() generates for --seed 3 --videos 1
    tracker_validation.main([
        "--work", str(tmp_path), "--seed", "3", "--hard-seed", "", "--videos", "1", "--trackers", "iou,instance",
        "--samples", "20", "--results-dir", str(tmp_path / "results"), *bench.as_set_args(bench.TINY_DETECTOR)])
    rows = bench.markdown_rows(capsys.readouterr().out, "seed 3")
    assert [row[1] for row in rows] == ["iou", "instance", "instance - iou"]  # the table, then the bootstrap
    assert {path.name for path in (tmp_path / "results" / "shapes-3-1").iterdir()} == {"iou.json", "instance.json"}
    assert len(list((tmp_path / "shapes-3-1").glob("proposals-*-each.pkl"))) == 1  # the detector's, cached


def test_pools_each_difficulty_with_several_sets_and_all_sets_when_that_is_another_pool(monkeypatch):
    monkeypatch.setattr(tracker_validation, "pool_sets", lambda sets: (len(sets), {}))
    set_of = lambda hard: (hard, {}, {})  # noqa: E731
    names = lambda scored: [name for name, _, _ in tracker_validation.pools(scored)]  # noqa: E731
    assert names([set_of(False), set_of(True)]) == []
    assert names([set_of(False)] * 3) == ["default, 3 sets"]
    assert names([set_of(False)] * 2 + [set_of(True)] * 3) == ["default, 2 sets", "hard, 3 sets", "all 5 sets"]
    assert names([set_of(False)] * 2 + [set_of(True)]) == ["default, 2 sets", "all 3 sets"]
    assert [count for _, count, _ in tracker_validation.pools([set_of(True)] * 2)] == [2]  # what was pooled
