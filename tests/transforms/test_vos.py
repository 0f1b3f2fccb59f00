import inspect

import apache_beam as beam
import numpy as np
import pytest
from apache_beam import pvalue
from apache_beam.testing.util import assert_that, equal_to

from tubelets import masks
from tubelets.config import defaults
from tubelets.errors import ConfigError
from tubelets.io.davis import read_palette_png
from tubelets.transforms.inputs import VideoInput
from tubelets.records import ObjectPrompt, Tubelet, TubeletFrame, VideoMeta
from tubelets.transforms.dead_letters import TAG as DEAD_LETTERS
from tubelets.transforms.vos import (
    OBJECT_CATEGORY,
    PairPrompts,
    SegmentObjects,
    WriteAnnotations,
    build_segmenter,
    frame_id_maps,
    objects_to_tubelets,
    pair_prompts,
    video_name,
)

H, W = 6, 8


def box_mask(top: int, left: int, height: int, width: int) -> np.ndarray:
    """uint8 ``[H, W]``, 1 inside the box."""
    mask = np.zeros((H, W), np.uint8)
    mask[top : top + height, left : left + width] = 1
    return mask


def tubelet_frame(frame: int, mask: np.ndarray, score: float = 1.0) -> TubeletFrame:
    return TubeletFrame(frame, masks.encode(mask), np.array(masks.bbox(masks.encode(mask)), np.float32), score)


def meta(key: str, length: int = 4, source: str = "video", url: str | None = None) -> VideoMeta:
    return VideoMeta(key, W, H, length, url=url or key, source=source)


def prompt(video: str, object_id: int = 1, frame: int = 0, mask: np.ndarray | None = None) -> ObjectPrompt:
    return ObjectPrompt(video, object_id, frame, mask=masks.encode(box_mask(1, 1, 2, 2) if mask is None else mask))


def split(outputs) -> tuple[list, list[dict]]:
    """(main outputs, dead-letter rows) of a DoFn's or function's outputs."""
    main, dead = [], []
    for output in outputs:
        if isinstance(output, pvalue.TaggedOutput):
            assert output.tag == DEAD_LETTERS
            dead.append(output.value)
        else:
            main.append(output)
    return main, dead


# ---- video_name ----------------------------------------------------------------------------------------


def test_a_video_file_is_named_by_its_file_name_and_a_data_set_video_by_its_key():
    assert video_name(meta("gs://bucket/clips/cat.mp4")) == "cat"
    assert video_name(meta("/data/clips/dog.v2.mov")) == "dog.v2"
    assert video_name(meta("bear", source="davis", url="/data/davis")) == "bear"
    assert video_name(meta("0043f083b5", source="jpeg", url="/data/ytvis")) == "0043f083b5"


def test_a_data_set_video_keeps_its_name_whatever_the_source():
    # A YouTube-VIS video decoded from videos/<name>.mp4 is keyed by its name, which is no file name:
    # nothing is cut from it, so prompts name it alike with io.source video and jpeg.
    for source, url in (("video", "/data/ytvis/videos/take.2.mp4"), ("jpeg", "/data/ytvis")):
        named = VideoMeta("take.2", W, H, 4, video_id=3, url=url, source=source)
        assert video_name(named) == "take.2"


# ---- pair_prompts ----------------------------------------------------------------------------------------


def given(metas, prompts, inputs=None):
    """The grouped value pair_prompts reads; every decoded video was an input unless ``inputs`` says otherwise."""
    inputs = [VideoInput(m.key, m.url or m.key, m.source, m.video_id) for m in metas] if inputs is None else inputs
    return {"input": inputs, "meta": metas, "prompts": prompts}


def test_a_video_pairs_with_all_its_prompts():
    cat = meta("/clips/cat.mp4")
    first, second = prompt("cat", 1), prompt("cat", 2, frame=3)
    main, dead = split(pair_prompts(("cat", given([cat], [[first], [second]]))))
    assert main == [(cat, [first, second])] and dead == []


def test_prompts_naming_no_input_are_a_dead_letter_under_the_name():
    main, dead = split(pair_prompts(("ghost", given([], [[prompt("ghost")]]))))
    assert main == [] and len(dead) == 1
    assert (dead[0]["input"], dead[0]["stage"], dead[0]["error_type"]) == ("ghost", "prompts", "PromptError")
    assert "'ghost'" in dead[0]["message"] and "not among the inputs" in dead[0]["message"]


def test_an_input_without_prompts_is_a_dead_letter_under_its_key():
    main, dead = split(pair_prompts(("cat", given([meta("/clips/cat.mp4")], []))))
    assert main == [] and [(d["input"], d["stage"]) for d in dead] == [("/clips/cat.mp4", "prompts")]
    assert "no prompt names video 'cat'" in dead[0]["message"]


def test_two_inputs_of_one_name_are_each_a_dead_letter():
    metas = [meta("/a/cat.mp4"), meta("/b/cat.mkv")]
    main, dead = split(pair_prompts(("cat", given(metas, [[prompt("cat")]]))))
    assert main == [] and [d["input"] for d in dead] == ["/a/cat.mp4", "/b/cat.mkv"]
    assert all("2 input videos are named 'cat'" in d["message"] and "/b/cat.mkv" in d["message"] for d in dead)


def test_a_prompted_input_that_failed_to_decode_gives_nothing_more():
    # its one dead letter (the decode failure) is written by the decoder
    failed = [VideoInput("/clips/cat.mp4", "/clips/cat.mp4")]
    assert list(pair_prompts(("cat", given([], [[prompt("cat")]], inputs=failed)))) == []


def test_pair_prompts_joins_by_video_name_in_the_pipeline(pipeline):
    cat, dog = meta("/clips/cat.mp4"), meta("/clips/dog.mp4")
    cat_prompts = [prompt("cat", 1), prompt("cat", 2)]
    with pipeline as p:
        inputs = p | "Inputs" >> beam.Create([VideoInput(m.key, m.key) for m in (cat, dog)])
        metas = p | "Metas" >> beam.Create([(cat.key, cat), (dog.key, dog)])
        prompts = p | "Prompts" >> beam.Create([("cat", cat_prompts), ("ghost", [prompt("ghost")])])
        paired = (inputs, metas, prompts) | PairPrompts()
        assert_that(paired.videos, equal_to([(cat, cat_prompts)]), label="Videos")
        failed = paired[DEAD_LETTERS] | beam.Map(lambda row: (row["input"], row["stage"]))
        assert_that(failed, equal_to([("/clips/dog.mp4", "prompts"), ("ghost", "prompts")]), label="DeadLetters")


# ---- objects_to_tubelets, frame_id_maps ----------------------------------------------------------------


def test_objects_become_tubelets_in_id_order_with_their_mean_score():
    three = [tubelet_frame(0, box_mask(0, 0, 2, 2), 0.5), tubelet_frame(2, box_mask(0, 0, 2, 2), 1.0)]
    one = [tubelet_frame(1, box_mask(3, 3, 2, 2), 0.25)]
    tubelets = objects_to_tubelets({3: three, 1: one, 2: []})  # object 2 is never seen: no tubelet
    assert [(t.tubelet_id, t.category_id) for t in tubelets] == [(1, 0), (3, 0)]
    assert [t.score for t in tubelets] == [0.25, 0.75] and tubelets[1].frames is three
    assert all(isinstance(t.tubelet_id, int) and isinstance(t.score, float) for t in tubelets)
    assert OBJECT_CATEGORY == {0: "object"}
    assert objects_to_tubelets({}) == []


def test_frame_id_maps_paint_each_frame_one_at_a_time():
    first, second = box_mask(0, 0, 2, 3), box_mask(3, 4, 2, 2)
    tubelets = [Tubelet(7, 0, 1.0, [tubelet_frame(0, first), tubelet_frame(2, first)]),
                Tubelet(2, 0, 1.0, [tubelet_frame(2, second)])]
    maps = frame_id_maps(tubelets, meta("v.mp4", length=4))
    assert inspect.isgenerator(maps)  # a long video's maps are never held together
    maps = list(maps)
    assert len(maps) == 4 and all(m.dtype == np.uint8 and m.shape == (H, W) for m in maps)
    np.testing.assert_array_equal(maps[0], first * 7)
    np.testing.assert_array_equal(maps[2], first * 7 + second * 2)
    assert not maps[1].any() and not maps[3].any()  # frames without masks are background


def test_frame_id_maps_of_no_tubelets_and_of_no_frames():
    assert [m.any() for m in frame_id_maps([], meta("v.mp4", length=2))] == [False, False]
    assert list(frame_id_maps([], meta("v.mp4", length=0))) == []


# ---- WriteAnnotations ----------------------------------------------------------------------------------


def test_write_annotations_writes_every_frame_under_the_video_name(tmp_path):
    tubelets = [Tubelet(3, 0, 1.0, [tubelet_frame(1, box_mask(2, 2, 3, 3))])]
    video = meta("/clips/cat.mp4", length=3)
    assert list(WriteAnnotations(str(tmp_path)).process((video, tubelets))) == ["cat"]
    folder = tmp_path / "Annotations" / "480p" / "cat"
    assert sorted(p.name for p in folder.iterdir()) == ["00000.png", "00001.png", "00002.png"]
    for t, expected in enumerate(frame_id_maps(tubelets, video)):
        np.testing.assert_array_equal(read_palette_png(str(folder / f"{t:05d}.png")), expected)


# ---- build_segmenter, SegmentObjects -------------------------------------------------------------------


def test_build_segmenter_takes_the_vos_section_without_prompts():
    settings = {**defaults("vos"), "prompts": "p.json", "checkpoint": None}
    segmenter = build_segmenter({**settings, "min_confidence": 0.3, "max_lost": 2})
    assert (segmenter.min_confidence, segmenter.max_lost, segmenter.model) == (0.3, 2, None)
    with pytest.raises(ConfigError, match="min_confidence"):
        build_segmenter({**defaults("vos"), "prompts": None, "checkpoint": None, "min_confidence": 3})


def test_segment_objects_fixes_the_workers_torch_threads():
    """As TrackVideo: the masks depend on the thread count, which is otherwise the worker process's."""
    import torch

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(3)
        untrained = {**defaults("vos"), "prompts": None, "checkpoint": None, "device": "cpu"}
        SegmentObjects(untrained, torch_threads=2).setup()
        assert torch.get_num_threads() == 2
        SegmentObjects(untrained).setup()  # none given: left as it is
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


@pytest.fixture(scope="module")
def segmenter_dofn() -> SegmentObjects:
    """The DoFn on the built-in tracker checkpoint (loaded once a process), on the CPU."""
    dofn = SegmentObjects({**defaults("vos"), "prompts": None, "device": "cpu"})
    dofn.setup()
    return dofn


@pytest.mark.parametrize(
    "bad, message",
    [
        (ObjectPrompt("cat", 1, 4, mask=masks.encode(box_mask(1, 1, 2, 2))), "frame is out of range"),
        (ObjectPrompt("cat", 1, 0, mask=masks.encode(np.ones((H + 1, W), np.uint8))), "mask size"),
        (ObjectPrompt("cat", 1, 0, point=(W + 0.5, 1.0)), "outside"),
        (ObjectPrompt("dog", 1, 0, point=(1.0, 1.0)), "belongs to video 'dog'"),
    ],
)
def test_a_prompt_that_does_not_fit_its_video_is_a_prompts_dead_letter(segmenter_dofn, bad, message):
    video = meta("/clips/cat.mp4", length=4)
    main, dead = split(segmenter_dofn.process((video, [bad])))
    assert main == [] and len(dead) == 1
    assert (dead[0]["input"], dead[0]["stage"], dead[0]["error_type"]) == ("/clips/cat.mp4", "prompts", "PromptError")
    assert message in dead[0]["message"]


def test_a_video_that_cannot_be_read_is_a_vos_dead_letter(segmenter_dofn, tmp_path):
    gone = str(tmp_path / "gone.mp4")
    main, dead = split(segmenter_dofn.process((meta(gone, length=4), [prompt("gone")])))
    assert main == [] and [(d["input"], d["stage"]) for d in dead] == [(gone, "vos")]
    assert "gone.mp4" in dead[0]["message"]
