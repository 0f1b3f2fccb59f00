import json
import shutil

import apache_beam as beam
import fsspec
import pytest
from apache_beam.options.pipeline_options import PipelineOptions
from apache_beam.pipeline import PipelineVisitor
from apache_beam.testing.util import assert_that, equal_to

from tubelets.errors import DatasetError
from tubelets.transforms.inputs import MatchInputs, VideoInput, expand_input, is_dataset

NAMES = ["video_0000", "video_0001"]


def test_a_glob_gives_one_input_per_file_keyed_by_url_in_sorted_order(shapes_url, tmp_path):
    for name in reversed(NAMES):
        shutil.copy(f"{shapes_url}/videos/{name}.mp4", tmp_path / f"{name}.mp4")
    (tmp_path / "notes.txt").write_text("not matched by the glob")
    urls = [str(tmp_path / f"{name}.mp4") for name in NAMES]
    assert expand_input(str(tmp_path / "*.mp4")) == [VideoInput(key=url, url=url) for url in urls]


def test_a_glob_that_matches_nothing_gives_no_input(tmp_path):
    assert expand_input(str(tmp_path / "*.mp4")) == []


def test_a_missing_folder_is_a_dataset_error_naming_it(tmp_path):
    missing = str(tmp_path / "nowhere")
    with pytest.raises(DatasetError, match="nowhere"):
        expand_input(missing)


def test_a_dataset_folder_gives_its_videos_by_name_and_id(shapes_url):
    inputs = expand_input(shapes_url)
    assert inputs == [
        VideoInput(key=name, url=f"{shapes_url}/videos/{name}.mp4", source="video", video_id=index)
        for index, name in enumerate(NAMES, start=1)
    ]


def test_a_dataset_folder_with_the_jpeg_source_points_at_the_dataset_root(shapes_url):
    inputs = expand_input(shapes_url + "/", source="jpeg")
    assert [(i.key, i.url, i.source, i.video_id) for i in inputs] == [
        (name, shapes_url, "jpeg", index) for index, name in enumerate(NAMES, start=1)
    ]


def test_is_dataset_needs_instances_json(shapes_url, tmp_path):
    assert is_dataset(shapes_url)
    assert not is_dataset(str(tmp_path))
    assert not is_dataset(f"{shapes_url}/videos/*.mp4")


def test_memory_urls_keep_their_protocol():
    fs = fsspec.filesystem("memory")
    for name in ("b.mp4", "a.mp4", "notes.txt"):
        fs.pipe(f"/inputs-test/clips/{name}", b"bytes")
    found = expand_input("memory://inputs-test/clips/*.mp4")
    assert [i.url.rsplit("/", 1)[1] for i in found] == ["a.mp4", "b.mp4"]
    for item in found:  # a URL a worker can open: the protocol was kept
        assert item.url.startswith("memory://") and item.key == item.url and item.source == "video"
        with fsspec.open(item.url, "rb") as handle:
            assert handle.read() == b"bytes"


def test_a_memory_dataset_folder_is_expanded_from_its_instances_json():
    videos = [{"id": 7, "name": "clip", "width": 64, "height": 48, "length": 1, "file_names": ["clip/00000.jpg"]}]
    fsspec.filesystem("memory").pipe("/inputs-test/set/instances.json", json.dumps({"videos": videos}).encode())
    assert expand_input("memory://inputs-test/set") == [
        VideoInput(key="clip", url="memory://inputs-test/set/videos/clip.mp4", source="video", video_id=7)
    ]


def test_match_inputs_gives_one_element_per_video(shapes_url, pipeline):
    expected = expand_input(shapes_url, source="jpeg")
    with pipeline as p:
        assert_that(p | MatchInputs(shapes_url, source="jpeg"), equal_to(expected))


def test_match_inputs_lists_the_videos_at_launch_into_its_create(shapes_url, tmp_path):
    """A Create of every video, not of INPUT (which a worker would expand in one partition, on Dask)."""
    listed = expand_input(shapes_url, source="jpeg")
    in_memory = PipelineOptions(["--runner=DirectRunner", "--direct_running_mode=in_memory"])
    p = beam.Pipeline(options=in_memory)
    _ = p | "MatchInputs" >> MatchInputs(shapes_url, source="jpeg")
    creates = []

    class Creates(PipelineVisitor):
        def enter_composite_transform(self, node):
            if isinstance(node.transform, beam.Create):
                creates.append(node.transform)

    p.visit(Creates())
    assert [list(create.values) for create in creates] == [listed] and len(listed) == 2
    given = [VideoInput(key="only", url=str(tmp_path / "only.mp4"))]  # the launcher's listing, used as it is
    with beam.Pipeline(options=in_memory) as p:
        assert_that(p | MatchInputs("not listed again", inputs=given), equal_to(given))


def test_match_inputs_of_an_empty_glob_is_an_empty_collection(tmp_path, pipeline):
    with pipeline as p:
        assert_that(p | MatchInputs(str(tmp_path / "*.mp4")), equal_to([]))


# ---- DAVIS folders ---------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def davis_url(tmp_path_factory) -> str:
    """Two DAVIS sequences of 64x48 (seed 1)."""
    from tubelets.synth.davis_layout import generate_davis

    root = tmp_path_factory.mktemp("inputs-davis") / "davis"
    generate_davis(str(root), videos=2, seed=1, width=64, height=48)
    return str(root)


def test_is_davis_needs_jpeg_images_480p_and_no_instances_json(davis_url, shapes_url, tmp_path):
    from tubelets.transforms.inputs import is_davis

    assert is_davis(davis_url) and is_davis(davis_url + "/")
    assert not is_davis(shapes_url) and not is_davis(str(tmp_path)) and not is_davis(f"{davis_url}/videos/*.mp4")
    both = tmp_path / "both"
    (both / "JPEGImages" / "480p").mkdir(parents=True)
    (both / "instances.json").write_text(json.dumps({"videos": []}))
    assert not is_davis(str(both)) and is_dataset(str(both))  # a YouTube-VIS folder stays one


def test_a_davis_folder_gives_its_sequences_by_name(davis_url):
    assert expand_input(davis_url) == [VideoInput(key=name, url=davis_url, source="davis") for name in NAMES]
    assert expand_input(davis_url, source="jpeg") == expand_input(davis_url)  # a DAVIS folder has only its JPEGs
