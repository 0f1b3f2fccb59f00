"""The ipdt / pixel / instance trackers: registry, empty cases, bidirectional extension, batching, behaviour.

Mechanics run on tiny untrained models; the behaviour of the trained method
(lost and found, filling frames a detector missed) needs the shipped
checkpoints and is skipped without them.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from tubelets import masks
from tubelets.config import defaults, load_config
from tubelets.errors import CheckpointError, ConfigError
from tubelets.models.checkpoints import builtin_checkpoints
from tubelets.models.ipdt.gates import MIN_AREA_RATIO
from tubelets.models.ipdt.propagation import Instance, PropagationSettings, Propagator, StepResult
from tubelets.models.trackers import build_tracker, known_trackers
from tubelets.models.trackers.ipdt import InstanceTracker, IpdtTracker, PixelTracker
from tubelets.records import FrameDetections, VideoMeta, VideoProposals
from tubelets.settings import Tracker as TrackerSection

pytestmark = pytest.mark.usefixtures("one_torch_thread")
H, W, SIDE = 48, 64, 12
NAMES = {IpdtTracker: "ipdt", PixelTracker: "pixel", InstanceTracker: "instance"}


def shipped(tracker_class, **changes):
    """``tracker_class`` with its shipped settings (``configs/default.yaml``) and ``changes``, without models."""
    return tracker_class(**{**defaults(f"tracker.{NAMES[tracker_class]}"), "checkpoint": None, **changes})


def on_models(tracker_class, models, **changes):
    """``tracker_class`` with its shipped settings and ``changes``, on the given (untrained) detector and heads."""
    settings = {**defaults(f"tracker.{NAMES[tracker_class]}"), **changes}
    del settings["checkpoint"]  # with_models gives the models instead
    return tracker_class.with_models(*models, **settings)


def frames_with(squares, length, seed=0):
    """``uint8 [T, H, W, 3]`` noise with bright squares at ``squares(t) -> [(x, y), ...]``."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 60, (length, H, W, 3), dtype=np.uint8)
    for t in range(length):
        for x, y in squares(t):
            frames[t, y : y + SIDE, x : x + SIDE] = (230, 200, 40)
    return frames


def proposals_with(placed, key="squares"):
    """``placed[t]``: ``[(x, y, label, score), ...]`` squares proposed in frame t."""
    frames = []
    for t, items in enumerate(placed):
        rles = []
        for x, y, _, _ in items:
            mask = np.zeros((H, W), np.uint8)
            mask[y : y + SIDE, x : x + SIDE] = 1
            rles.append(masks.encode(mask))
        boxes = np.asarray([[x, y, x + SIDE, y + SIDE] for x, y, _, _ in items], np.float32).reshape(-1, 4)
        frames.append(FrameDetections(t, boxes, np.asarray([i[3] for i in items], np.float32),
                                      np.asarray([i[2] for i in items], np.int64), rles))
    return VideoProposals(VideoMeta(key, W, H, len(placed)), frames)


def test_the_three_trackers_are_registered_and_check_their_settings(tmp_path):
    assert {"ipdt", "pixel", "instance"} <= set(known_trackers())
    with pytest.raises(ConfigError, match="unknown setting"):
        build_tracker("ipdt", {"ipdt": {**defaults("tracker.ipdt"), "checkpoint": None, "max_age": 3}})
    with pytest.raises(ConfigError, match="min_confidence"):
        build_tracker("pixel", {"pixel": {**defaults("tracker.pixel"), "checkpoint": None, "min_confidence": 2}})
    missing = str(tmp_path / "nope.pt")
    with pytest.raises(CheckpointError, match="nope.pt"):
        build_tracker("instance", {"instance": {**defaults("tracker.instance"), "checkpoint": missing}})


@pytest.mark.parametrize("name, unread", [
    ("pixel", "box_margin"),  # the instance level's box cuts the pixel level's mask: both levels only
    ("pixel", "window_influence"),  # the Siamese search
    ("pixel", "max_colour_distance"),  # the colour check, relinking and the fill check are the instance level's
    ("pixel", "relink_frames"),
    ("pixel", "check_fill_colour"),
    ("instance", "mask_threshold"),  # the instance level carries the last mask along: no probabilities
    ("instance", "box_margin"),
])
def test_a_tracker_takes_no_setting_it_would_ignore(name, unread):
    with pytest.raises(ConfigError, match=rf"unknown setting\(s\) \['{unread}'\] for tracker.{name}"):
        build_tracker(name, {name: {**defaults(f"tracker.{name}"), "checkpoint": None, unread: 1.0}})


def test_no_proposals_give_no_tubelets_and_read_no_frame(models):
    tracker = on_models(IpdtTracker, models)
    assert tracker.track(proposals_with([[], [], []]), frames=None) == []
    assert tracker.track(proposals_with([]), frames=None) == []


def test_one_frame_gives_the_proposals_themselves(models):
    tracker = on_models(IpdtTracker, models)
    video = proposals_with([[(5, 5, 1, 0.9), (40, 20, 2, 0.6)]])
    tubelets = tracker.track(video, frames_with(lambda t: [(5, 5), (40, 20)], 1))
    assert [(t.category_id, t.score, len(t.frames)) for t in tubelets] == [(1, pytest.approx(0.9), 1),
                                                                           (2, pytest.approx(0.6), 1)]


def test_frames_out_of_order_are_refused(models):
    video = proposals_with([[], []])
    video.frames.reverse()
    with pytest.raises(ValueError, match="in order"):
        on_models(IpdtTracker, models).track(video, frames=None)


def test_an_instance_first_proposed_mid_video_is_extended_backward(models):
    # The instance level carries the mask along; with no confidence floor every step is kept,
    # so the frames before the proposal can only come from the backward sweep.
    tracker = on_models(InstanceTracker, models, min_confidence=0.0)
    path = lambda t: [(4 + 3 * t, 10)]  # noqa: E731
    placed = [[], [], [], [(13, 10, 1, 0.9)], [], []]
    tubelets = tracker.track(proposals_with(placed), frames_with(path, 6))
    assert len(tubelets) == 1
    assert [f.frame for f in tubelets[0].frames] == [0, 1, 2, 3, 4, 5]
    assert tubelets[0].frames[3].score == pytest.approx(0.9)  # the proposal itself
    assert all(f.score < 0.9 for f in tubelets[0].frames if f.frame != 3)  # propagated: score x confidence


def test_a_direction_no_proposal_confirms_stops_and_drops_its_unconfirmed_tail(models):
    path = lambda t: [(4 + 3 * t, 10)]  # noqa: E731
    placed = [[], [], [(10, 10, 1, 0.9)], [], [], [], [], [], []]  # one proposal, on frame 2
    video, frames = proposals_with(placed), frames_with(path, 9)
    unlimited = on_models(InstanceTracker, models, min_confidence=0.0, max_unconfirmed=None)
    assert [[f.frame for f in t.frames] for t in unlimited.track(video, frames)] == [list(range(9))]
    limited = on_models(InstanceTracker, models, min_confidence=0.0, max_unconfirmed=2)
    # Backward, frames 1 and 0 are 2 unconfirmed steps: kept. Forward, the 3rd unconfirmed step (frame 5)
    # stops the direction and drops frames 3 and 4 with it.
    assert [[f.frame for f in t.frames] for t in limited.track(video, frames)] == [[0, 1, 2]]
    with pytest.raises(ConfigError, match="max_unconfirmed"):
        shipped(InstanceTracker, max_unconfirmed=-1)


def test_the_guard_stops_a_direction_only_where_the_detector_looked(models):
    placed = [[(20, 10, 1, 0.9)] if t in (0, 5) else [] for t in range(10)]  # proposed on frames 0 and 5
    video, frames = proposals_with(placed), frames_with(lambda t: [(20, 10)], 10)
    tracker = on_models(InstanceTracker, models, min_confidence=0.0, max_unconfirmed=3)
    # The detector looked at every frame: each direction stops at its 4th unconfirmed step, dropping its tail.
    assert sorted([f.frame for f in t.frames] for t in tracker.track(video, frames)) == [[0], [5]]
    # It looked at frames 0 and 5 only (proposals.detect_every 5). The untrained heads do not meet frame 5's
    # proposal, so the first direction stops there; the second, backward from 5, stops at frame 0, where the
    # detector looked; forward, frames 6-9 are 4 unconfirmed steps, but the detector never looked again.
    seen = [d if d.frame % 5 == 0 else FrameDetections.empty(d.frame, detected=False) for d in video.frames]
    tubelets = tracker.track(VideoProposals(video.meta, seen), frames)
    assert sorted([f.frame for f in t.frames] for t in tubelets) == [[0], [5, 6, 7, 8, 9]]


def test_a_backward_extension_stops_at_the_object_its_own_came_out_from_behind(models):
    # Y sits at x=20 throughout; X is first proposed on frame 3 half over Y and moves right. Backward,
    # X's last mask overlaps Y's proposal on frame 2 (IoU 1/3 > snap_iou), which Y's tubelet holds.
    still, leaving = (20, 10), lambda t: (26 + 3 * (t - 3), 10)
    placed = [[(*still, 1, 0.9)] + ([(*leaving(t), 2, 0.8)] if t >= 3 else []) for t in range(6)]
    video = proposals_with(placed)
    frames = frames_with(lambda t: [still] + ([leaving(t)] if t >= 3 else []), 6)

    def frames_per_tubelet(switch_iou):
        tracker = on_models(InstanceTracker, models, min_confidence=0.0, switch_iou=switch_iou)
        return sorted([f.frame for f in t.frames] for t in tracker.track(video, frames))

    # Without the check X's extension takes Y's frames 0-2 and, sharing them, merges into Y's tubelet.
    assert frames_per_tubelet(None) == [[0, 1, 2, 3, 4, 5]]
    assert frames_per_tubelet(0.25) == [[0, 1, 2, 3, 4, 5], [3, 4, 5]]
    with pytest.raises(ConfigError, match="switch_iou"):
        shipped(InstanceTracker, switch_iou=1.5)


def test_the_instance_level_takes_no_proposal_of_another_colour(models):
    # A yellow square for frames 0-2, then a blue one in its place: one proposal per frame at the same spot.
    frames = frames_with(lambda t: [(20, 10)], 6)
    frames[3:, 10 : 10 + SIDE, 20 : 20 + SIDE] = (40, 80, 230)
    video = proposals_with([[(20, 10, 1, 0.9)] for _ in range(6)])

    def frames_per_tubelet(tracker_class, **colour):
        tracker = on_models(tracker_class, models, max_unconfirmed=0, **colour)
        return sorted([f.frame for f in t.frames] for t in tracker.track(video, frames))

    assert frames_per_tubelet(InstanceTracker, max_colour_distance=None) == [[0, 1, 2, 3, 4, 5]]
    assert frames_per_tubelet(InstanceTracker, max_colour_distance=1.0) == [[0, 1, 2], [3, 4, 5]]
    assert frames_per_tubelet(IpdtTracker, max_colour_distance=1.0) == [[0, 1, 2], [3, 4, 5]]
    # No instance level, no colour check: the pixel tracker does not even take max_colour_distance.
    assert frames_per_tubelet(PixelTracker) == [[0, 1, 2, 3, 4, 5]]
    with pytest.raises(ConfigError, match="max_colour_distance"):
        shipped(InstanceTracker, max_colour_distance=0)
    from tubelets.models.ipdt.features import FeatureWindow

    window = FeatureWindow(*models, lambda t: frames[t], capacity=32)
    settings = shipped(IpdtTracker, max_colour_distance=1.0).settings
    with pytest.raises(ValueError, match="colour check"):
        Propagator(models[1], settings).run(video, window.__getitem__)


def test_a_frame_the_heads_fill_with_a_mask_of_another_colour_is_lost(models):
    # A yellow square moving right, unproposed and painted blue in frames 3-4: the heads still place it there.
    path = lambda t: [(4 + 2 * t, 10)]  # noqa: E731
    frames = frames_with(path, 8)
    for t in (3, 4):
        x = path(t)[0][0]
        frames[t, 10 : 10 + SIDE, x : x + SIDE] = (40, 80, 230)
    video = proposals_with([[(*path(t)[0], 1, 0.9)] if t not in (3, 4) else [] for t in range(8)])

    def frames_per_tubelet(check_fill_colour):
        tracker = on_models(InstanceTracker, models, min_confidence=0.0, max_colour_distance=1.0,
                                              check_fill_colour=check_fill_colour)
        return sorted([f.frame for f in t.frames] for t in tracker.track(video, frames))

    assert all({3, 4} <= set(numbers) for numbers in frames_per_tubelet(False))  # no check: filled there
    assert frames_per_tubelet(True) == [[0, 1, 2, 5, 6, 7]]  # lost in the blue frames, found again in frame 5
    with pytest.raises(ConfigError, match="check_fill_colour"):
        shipped(InstanceTracker, check_fill_colour="yes")


@pytest.mark.parametrize("tracker_class", [InstanceTracker, IpdtTracker])
def test_an_extension_stopped_for_want_of_proposals_is_relinked_to_its_object_s_next_proposal(models, tracker_class):
    # A square moving right, unproposed in frames 4-6: the forward extension stops at frame 4 (max_unconfirmed 0)
    # and the proposal of frame 7 starts a new instance, which backward stops at frame 6 the same way.
    path = lambda t: [(4 + 2 * t, 10)]  # noqa: E731
    placed = [[(*path(t)[0], 1, 0.9)] if t not in (4, 5, 6) else [] for t in range(10)]
    video, frames = proposals_with(placed), frames_with(path, 10)

    def frames_per_tubelet(video, frames, **settings):
        tracker = on_models(tracker_class, models, max_unconfirmed=0, max_colour_distance=1.0, **settings)
        return sorted([f.frame for f in t.frames] for t in tracker.track(video, frames))

    apart = [[0, 1, 2, 3], [7, 8, 9]]
    assert frames_per_tubelet(video, frames) == apart
    assert frames_per_tubelet(video, frames, relink_frames=3) == [[0, 1, 2, 3, 7, 8, 9]]
    assert frames_per_tubelet(video, frames, relink_frames=2) == apart  # a gap of 3 frames is too long
    recoloured = frames.copy()
    recoloured[7:, 10 : 10 + SIDE] = frames_with(lambda t: [], 3)[:, 10 : 10 + SIDE]  # the square's rows
    for t in range(7, 10):
        x = path(t)[0][0]
        recoloured[t, 10 : 10 + SIDE, x : x + SIDE] = (40, 80, 230)
    assert frames_per_tubelet(video, recoloured, relink_frames=3) == apart  # another colour: another object
    far = [items if t < 7 else [(x + 30, y, label, score) for x, y, label, score in items]
           for t, items in enumerate(placed)]
    far_frames = frames_with(lambda t: path(t) if t < 7 else [(path(t)[0][0] + 30, 10)], 10)
    assert frames_per_tubelet(proposals_with(far), far_frames, relink_frames=3) == apart  # outside the search window
    with pytest.raises(ConfigError, match="relink_frames"):
        shipped(InstanceTracker, relink_frames=-1)


def test_an_extension_that_stops_after_its_object_s_next_instance_started_is_relinked_to_it(models):
    # The square is unproposed in frames 4-5. Its first extension is held alive without frames until frame 8, as
    # one that drifted is until its unconfirmed tail is dropped, so the instance of frame 6 starts before it stops.
    from tubelets.models.ipdt.features import FeatureWindow

    class HeldUntilFrame8(Propagator):
        def _advance(self, active, frame, previous, detections, encodings, holders=()):
            held = [i for i in active if i.serial == 0 and previous < frame and 4 <= frame < 8]
            rest = [i for i in active if i not in held]
            return held + (super()._advance(rest, frame, previous, detections, encodings, holders) if rest else [])

    path = lambda t: [(4 + 2 * t, 10)]  # noqa: E731
    video = proposals_with([[(*path(t)[0], 1, 0.9)] if t not in (4, 5) else [] for t in range(10)])
    frames = frames_with(path, 10)
    window = FeatureWindow(*models, lambda t: frames[t], capacity=32)

    def frames_per_candidate(relink_frames):
        tracker = shipped(IpdtTracker, max_unconfirmed=0, max_colour_distance=1.0, relink_frames=relink_frames)
        candidates = HeldUntilFrame8(models[1], tracker.settings).run(video, window.__getitem__, lambda t: frames[t])
        return sorted(sorted(c.frames) for c in candidates)

    assert frames_per_candidate(relink_frames=2) == [[0, 1, 2, 3, 6, 7, 8, 9]]
    assert frames_per_candidate(relink_frames=1) == [[0, 1, 2, 3], [6, 7, 8, 9]]  # a gap of 2 frames is too long


def test_both_levels_lose_an_instance_only_together_and_vos_when_either_does(models):
    from tubelets.models.ipdt.features import FeatureWindow

    detector, heads = models
    frames = frames_with(lambda t: [(5 + 2 * t, 8), (40, 20)], 2)
    window = FeatureWindow(detector, heads, lambda t: frames[t], capacity=32)
    proposals = proposals_with([[(5, 8, 1, 0.9), (40, 20, 2, 0.6)]]).frames[0]

    def confidence(settings):
        propagator = Propagator(heads, settings)
        instances = propagator.make_instances(proposals, window[0], 0)
        return propagator.step(instances, window[1], window[0]).confidence

    instance_only = confidence(shipped(InstanceTracker).settings)
    pixel_only = confidence(shipped(PixelTracker).settings)
    both = shipped(IpdtTracker).settings
    assert not torch.equal(instance_only, pixel_only)
    assert torch.equal(confidence(both), torch.maximum(instance_only, pixel_only))
    either = dataclasses.replace(both, either_level_loses=True)  # as VOS has it
    assert torch.allclose(confidence(either), torch.sqrt(instance_only * pixel_only))


@pytest.mark.parametrize("tracker_class, kept", [(IpdtTracker, [False, True, True]),
                                                 (InstanceTracker, [True, True, True])])
def test_a_pixel_mask_that_shrank_to_a_sliver_is_not_the_object(models, tracker_class, kept):
    last = torch.zeros(1, 40, 40)
    last[0, :20, :20] = 1  # 400 pixels
    instance = Instance(0, 0, None, None, None, [1], [0.9], mask=last[0])
    predicted = torch.zeros(3, 40, 40, dtype=torch.bool)
    predicted[0, :3, :3] = True  # 9 pixels: an occluded remnant
    predicted[1].view(-1)[: int(MIN_AREA_RATIO * 400)] = True  # exactly the limit
    predicted[2, :10, :10] = True  # a quarter: the object partly hidden
    result = StepResult(torch.zeros(3, 4), predicted, torch.ones(3), predicted)
    propagator = Propagator(models[1], shipped(tracker_class).settings)
    assert [propagator._found_by_heads(result, n, instance) for n in range(3)] == kept


@pytest.mark.parametrize("tracker_class", [IpdtTracker, PixelTracker, InstanceTracker])
def test_each_frame_runs_the_heads_once_whatever_the_number_of_instances(models, tracker_class):
    detector, heads = models
    calls: dict[str, int] = {}
    hooks = [
        getattr(heads, name).register_forward_hook(
            lambda *_, name=name: calls.__setitem__(name, calls.get(name, 0) + 1)
        )
        for name in ("embedding", "discriminator", "correlator", "segmentation")
    ]
    counts = []
    try:
        for count in (1, 4):
            calls.clear()
            starts = [(2 + 15 * i, 5 + 8 * (i % 2)) for i in range(count)]
            video = proposals_with([[(x, y, 1, 0.9) for x, y in starts]] + [[] for _ in range(4)])
            tracker = on_models(tracker_class, models, min_confidence=0.0, max_lost=10)
            tracker.track(video, frames_with(lambda t: starts, 5))
            counts.append(dict(calls))
    finally:
        for hook in hooks:
            hook.remove()
    assert counts[0] == counts[1]
    steps = 4  # frames 1..4 of the forward sweep; nothing starts later, so there is no backward sweep
    use_instance, use_pixel = tracker_class.LEVELS
    assert counts[0].get("discriminator", 0) == (steps if use_instance else 0)
    assert counts[0].get("segmentation", 0) == (steps if use_pixel else 0)
    assert counts[0]["embedding"] == 5  # once per frame


# ---- behaviour of the trained method (shipped checkpoints) ----

needs_checkpoints = pytest.mark.skipif(
    not {"tracker-small", "detector-small"} <= set(builtin_checkpoints()),
    reason="needs the shipped models/checkpoints/tracker-small.pt and detector-small.pt",
)


def disc_scene(length: int, hidden: range, seed: int = 0):
    """256x192 frames: a striped disc crossing a noisy background, fully hidden behind a grey wall in ``hidden``.

    Returns ``(frames uint8 [T, H, W, 3], visible masks bool [T, H, W])``.
    """
    rng = np.random.default_rng(seed)
    height, width = 192, 256
    yy, xx = np.mgrid[:height, :width]
    frames = np.clip(rng.normal(110, 25, (length, height, width, 3)), 0, 255).astype(np.uint8)
    visible = np.zeros((length, height, width), bool)
    for t in range(length):
        cx, cy = 40 + 6 * t, 90 + 2 * t
        disc = (xx - cx) ** 2 + (yy - cy) ** 2 <= 24 ** 2
        frames[t][disc] = np.where(((xx[disc] // 5) % 2)[:, None] == 0, [220, 60, 40], [250, 200, 60])
        if t in hidden:
            frames[t, 40:170, cx - 40 : cx + 40] = 128  # a wall that moves with the disc
        else:
            visible[t] = disc
    return frames, visible


@needs_checkpoints
def test_trained_ipdt_loses_an_occluded_instance_and_finds_it_again():
    frames, visible = disc_scene(16, hidden=range(6, 9))
    placed = []
    for t in range(16):
        rle = masks.encode(visible[t].astype(np.uint8)) if visible[t].any() else None
        if rle is None:
            placed.append(FrameDetections.empty(t))
        else:
            x, y, w, h = masks.bbox(rle)
            placed.append(FrameDetections(t, np.array([[x, y, x + w, y + h]], np.float32), np.array([0.9], np.float32),
                                          np.array([1]), [rle]))
    video = VideoProposals(VideoMeta("disc", 256, 192, 16), placed)
    tubelets = build_tracker("ipdt", {"ipdt": {**defaults("tracker.ipdt"), "device": "cpu"}}).track(video, frames)
    assert len(tubelets) == 1
    assert [f.frame for f in tubelets[0].frames] == [t for t in range(16) if t not in range(6, 9)]


def missed_shapes_video(length: int = 12, missed=(0, 1, 2, 6, 7)):
    """A Shapes-VIS video (seed 5) whose first object the detector proposed in every frame but ``missed``.

    Returns ``(frames uint8 [T, H, W, 3], the object's masks bool [T, H, W], VideoProposals)``.
    """
    from tubelets.synth.scene import generate_video

    video = generate_video(np.random.default_rng(5), 256, 192, False)
    truth = np.stack([video.instances[0].masks[t] for t in range(length)])
    placed = []
    for t in range(length):
        if t in missed:
            placed.append(FrameDetections.empty(t))
            continue
        rle = masks.encode(truth[t].astype(np.uint8))
        x, y, w, h = masks.bbox(rle)
        placed.append(FrameDetections(t, np.array([[x, y, x + w, y + h]], np.float32), np.array([0.9], np.float32),
                                      np.array([1]), [rle]))
    return video.frames[:length], truth, VideoProposals(VideoMeta("shapes", 256, 192, length), placed)


@needs_checkpoints
def test_trained_ipdt_fills_frames_the_detector_missed():
    frames, truth, video = missed_shapes_video()
    tubelets = build_tracker("ipdt", {"ipdt": {**defaults("tracker.ipdt"), "device": "cpu"}}).track(video, frames)
    assert len(tubelets) == 1 and [f.frame for f in tubelets[0].frames] == list(range(12))
    ious = {item.frame: masks.iou_matrix([item.mask], [masks.encode(truth[item.frame].astype(np.uint8))])[0, 0]
            for item in tubelets[0].frames}
    assert all(ious[t] == 1.0 for t in (3, 4, 5, 8, 9, 10, 11))  # the proposals themselves
    # Propagated stride-4 masks: 0.92-0.97 with tracker-small (3 frames back from the first proposal at worst).
    assert all(ious[t] > 0.8 for t in (0, 1, 2, 6, 7))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@needs_checkpoints
def test_ipdt_on_the_gpu_gives_the_cpu_tubelets():
    frames, _, video = missed_shapes_video()
    on_cpu = build_tracker("ipdt", {"ipdt": {**defaults("tracker.ipdt"), "device": "cpu"}}).track(video, frames)
    # float32 on both: the same arithmetic on another device (precision auto would run the backbone in bfloat16).
    on_gpu = build_tracker("ipdt", {"ipdt": {**defaults("tracker.ipdt"), "device": "cuda", "precision": "float32"}}
                           ).track(video, frames)
    assert [[f.frame for f in t.frames] for t in on_gpu] == [[f.frame for f in t.frames] for t in on_cpu]
    for cpu_frame, gpu_frame in zip(on_cpu[0].frames, on_gpu[0].frames):
        assert masks.iou_matrix([gpu_frame.mask], [cpu_frame.mask])[0, 0] > 0.95


def test_ipdt_is_the_default_tracker_and_each_config_section_holds_exactly_what_its_levels_read():
    section = load_config()["tracker"]
    assert section["name"] == "ipdt"
    propagated = {field.name for field in dataclasses.fields(PropagationSettings)}
    for tracker_class, name in NAMES.items():
        fields = dataclasses.fields(tracker_class)
        taken = {field.name for field in fields}
        assert all(field.default is dataclasses.MISSING for field in fields), name  # the YAML holds the defaults
        assert set(section[name]) == taken, name
        assert set(TrackerSection.model_fields[name].annotation.model_fields) == taken, name
        # What the propagation reads with the tracker's levels, no more, no less; the rest is the tracker's own.
        unread = set(PropagationSettings.unread_by(*tracker_class.LEVELS))
        assert taken & propagated == propagated - unread - {"use_instance", "use_pixel", "either_level_loses"}, name
        assert taken - propagated == {"checkpoint", "detector_checkpoint", "device", "precision", "th_seq",
                                  "feature_window"}, name


def test_propagation_settings_hold_a_level_s_settings_exactly_when_it_runs():
    both = shipped(IpdtTracker).settings
    with pytest.raises(ValueError, match=r"\['mask_threshold', 'box_margin'\] are read by a level .* does not run"):
        dataclasses.replace(both, use_pixel=False)
    with pytest.raises(ValueError, match=r"\['window_influence'\] are read by the levels .* runs"):
        dataclasses.replace(both, window_influence=None)
    pixel = shipped(PixelTracker).settings
    assert (pixel.window_influence, pixel.box_margin, pixel.check_fill_colour) == (None, None, None)
    assert not pixel.checks_colour
