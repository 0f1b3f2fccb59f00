import numpy as np
import pytest

from tubelets.synth import appearance, generate_video, scene, shapes, spec
from tubelets.synth.background import Background
from tubelets.synth.effects import Effects
from tubelets.synth.motion import Trajectory

# Half the default frame size keeps the module fast; every range scales with the frame.
WIDTH, HEIGHT = 128, 96


@pytest.fixture(scope="module")
def default_videos():
    return [generate_video(seed, WIDTH, HEIGHT) for seed in range(12)]


@pytest.fixture(scope="module")
def hard_videos():
    return [generate_video(seed, WIDTH, HEIGHT, hard=True) for seed in range(5)]


def test_same_seed_same_video_and_other_seeds_differ():
    a, b = generate_video(5, 96, 64), generate_video(np.random.default_rng(5), 96, 64)
    np.testing.assert_array_equal(a.frames, b.frames)
    assert [i.category_id for i in a.instances] == [i.category_id for i in b.instances]
    for x, y in zip(a.instances, b.instances):
        np.testing.assert_array_equal(x.mask_array(), y.mask_array())
    assert not np.array_equal(generate_video(6, 96, 64).frames[0], a.frames[0])


def test_videos_follow_the_spec_ranges(default_videos):
    short = HEIGHT
    for video in default_videos:
        assert video.frames.dtype == np.uint8 and video.frames.shape[1:] == (HEIGHT, WIDTH, 3)
        assert spec.DEFAULT_SPEC.frames[0] <= video.length <= spec.DEFAULT_SPEC.frames[1]
        assert 1 <= len(video.instances) <= spec.DEFAULT_SPEC.objects[1]
        for instance in video.instances:
            assert 1 <= instance.category_id <= 6 and len(instance.masks) == video.length
            radii = instance.trajectory.radii[instance.trajectory.start :]
            assert radii.min() >= 0.08 * short - 1e-9 and radii.max() <= 0.25 * short + 1e-9
            if instance.category_id == spec.CATEGORY_IDS["disc"]:
                assert 0.6 <= instance.shape.params["axis_ratio"] <= 1.0
    lengths = [v.length for v in default_videos]
    assert max(lengths) - min(lengths) >= 10
    assert {i.category_id for v in default_videos for i in v.instances} == set(range(1, 7))


def test_visible_masks_are_disjoint_parts_of_the_drawn_shapes(default_videos, hard_videos):
    for video in default_videos[:6] + hard_videos[:3]:
        for t in range(video.length):
            claimed = np.zeros((video.height, video.width), dtype=np.int64)
            for instance in video.instances:
                mask = instance.masks[t]
                if mask is None:
                    continue
                assert mask.dtype == bool and mask.sum() >= spec.MIN_VISIBLE_PIXELS
                full = shapes.rasterize(instance.shape, instance.trajectory.placement(t), video.height, video.width)
                assert not (mask & ~full.mask).any()
                claimed += mask
            assert claimed.max() <= 1


def test_occlusion_hides_part_of_some_instances(default_videos):
    hidden = 0
    for video in default_videos:
        for instance in video.instances:
            for t in instance.visible_frames:
                full = shapes.rasterize(instance.shape, instance.trajectory.placement(t), video.height, video.width)
                hidden += instance.masks[t].sum() < full.mask.sum()
    assert hidden > 20


def test_instances_appear_late_and_leave_across_seeds(default_videos):
    late = [i for v in default_videos for i in v.instances if i.visible_frames[0] > 0]
    left = [i for v in default_videos for i in v.instances if i.visible_frames[-1] < len(i.masks) - 1]
    assert late and left
    assert any(i.trajectory.start > 0 for i in late)


def test_hard_mode_has_more_objects_and_longer_videos(default_videos, hard_videos):
    assert np.mean([len(v.instances) for v in hard_videos]) > np.mean([len(v.instances) for v in default_videos]) + 1
    assert min(v.length for v in hard_videos) >= spec.HARD_SPEC.frames[0]
    assert np.mean([v.length for v in hard_videos]) > np.mean([v.length for v in default_videos])


@pytest.mark.parametrize("width, height", [(16, 64), (64, 31), (64.0, 64), (True, 64)])
def test_bad_frame_size_fails_clearly(width, height):
    with pytest.raises(ValueError, match="width|height"):
        generate_video(0, width, height)


def test_visible_parts_cut_nearer_shapes_out_and_drop_slivers():
    back = np.zeros((10, 10), dtype=bool)
    back[:, :6] = True  # 60 px
    front = np.zeros((10, 10), dtype=bool)
    front[:, 2:] = True
    sliver = np.zeros((10, 10), dtype=bool)
    sliver[0, :9] = True  # 9 px below front: at most 0 visible
    visible = scene.visible_parts([back, front, sliver, None], depths=[2, 0, 1, 3])
    np.testing.assert_array_equal(visible[0], back & ~front & ~sliver)  # 18 px left
    np.testing.assert_array_equal(visible[1], front)
    assert visible[2] is None and visible[3] is None
    too_small = back.copy()
    too_small[:, 1:] = False  # 10 px, of which 10 visible: below the 12 px floor
    assert scene.visible_parts([too_small], [0]) == [None]
    assert scene.visible_parts([], []) == []


def test_rendered_pixels_are_exactly_the_annotated_pixels():
    """With no noise or blur, every masked pixel has its object's colour and every other
    pixel the background's."""
    height, width, length = 48, 64, 3
    base = np.full((height, width, 3), 10.0, dtype=np.float32)
    background = Background(base, (0, 0), np.full(3, 10.0))
    red = appearance.Fill("solid", np.array([[200.0, 0, 0]] * 2))
    blue = appearance.Fill("solid", np.array([[0, 0, 200.0]] * 2))

    def still(x, y, radius, start=0):
        centres = np.tile([x, y], (length, 1)).astype(float)
        centres[:start] = np.nan
        return Trajectory(start, centres, np.zeros(length), np.full(length, radius))

    ring = scene.SceneObject(5, shapes.Shape(5, {"inner_ratio": 0.5}), red, still(30, 24, 15), depth=0)
    disc = scene.SceneObject(1, shapes.Shape(1, {"axis_ratio": 1.0}), blue, still(40, 24, 12, start=1), depth=1)
    nothing = Effects(np.zeros(length), np.ones(length), np.zeros(length), np.zeros(length))
    camera, rng = np.zeros((length, 2)), np.random.default_rng(0)
    frames, masks = scene.render_scene([ring, disc], background, camera, nothing, rng, height, width)
    assert masks[1][0] is None and masks[1][1] is not None
    for t in range(length):
        for mask, colour in ((masks[0][t], [200, 0, 0]), (masks[1][t], [0, 0, 200])):
            if mask is not None:
                assert np.all(frames[t][mask] == colour)
        covered = masks[0][t] | (masks[1][t] if masks[1][t] is not None else False)
        assert np.all(frames[t][~covered] == 10)
    # The disc shows through the ring's hole, so its visible part is not one piece.
    hole = shapes.rasterize(disc.shape, disc.trajectory.placement(1), height, width).mask
    assert (masks[1][1] & hole).sum() < hole.sum() and masks[1][1][24, 30]
