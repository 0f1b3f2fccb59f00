import pytest
import scale_bench

from tubelets.io.dataset import YouTubeVISDataset
from tubelets.io.video import iter_frames

pytestmark = pytest.mark.smoke


def test_one_bucket_of_one_tiny_clip_on_the_direct_runner(tmp_path, capsys):
    status = scale_bench.main(["--sizes", "1", "--engines", "direct", "--commands", "segment,evaluate",
                               "--workers", "1", "--frames", "2",
                               "--width", "32", "--height", "32", "--clips", "1", "--no-warmup",
                               "--work", str(tmp_path), "--json", str(tmp_path / "rows.json")])
    assert status == 0
    rows = [line.split(" | ") for line in capsys.readouterr().out.splitlines() if line.startswith("direct")]
    assert [tuple(row[:4]) for row in rows] == [  # engine, command, videos, frames
        ("direct", "segment", "1", "2"), ("direct", "evaluate", "1", "2")]
    assert (tmp_path / "rows.json").exists()


def test_an_evaluation_bucket_is_a_labelled_data_set_of_the_clips(tmp_path):
    clips = scale_bench.make_clips(str(tmp_path / "clips"), 2, 3, 32, 32, seed=1)
    folder = scale_bench.make_dataset_bucket(str(tmp_path / "set"), clips, 3)
    dataset = YouTubeVISDataset(folder)
    assert [(v.id, v.name, v.length) for v in dataset.videos] == [(1, "video_00000", 3), (2, "video_00001", 3),
                                                                  (3, "video_00002", 3)]
    first, again = ([(t.category_id, t.segmentations) for t in dataset.tracks(v)] for v in (1, 3))
    assert again == first and first  # the first clip again, its ground truth too
    assert len({t.id for v in (1, 2, 3) for t in dataset.tracks(v)}) == sum(len(dataset.tracks(v)) for v in (1, 2, 3))
    assert [t for t, _ in iter_frames(f"{folder}/videos/video_00002.mp4")] == [0, 1, 2]
