"""The propagator asks its oracle for the guard's, the fills' and the relinks' decisions (tiny untrained heads)."""

from __future__ import annotations

import copy
import dataclasses

import pytest
import torch

from tubelets.config import defaults
from tubelets.models.ipdt import oracle as oracles
from tubelets.models.ipdt.features import FeatureWindow
from tubelets.models.ipdt.propagation import PropagationSettings, Propagator, proposal_snap
from tubelets.models.trackers.ipdt import InstanceTracker

from .conftest import square_frames, video

# A square moving right, proposed in frames 0-2 only; the heads fill the frames after (min_confidence 0).
FRAMES = square_frames(5, [(4, 10, 2)])
PROPOSED = video([[(4 + 2 * t, 10, 1, 0.9)] if t < 3 else [] for t in range(5)])


def instance_level(models, **changes) -> PropagationSettings:
    """The ``instance`` tracker's propagation (its mask is never a remnant), shipped settings but ``changes``."""
    settings = {**defaults("tracker.instance"), "min_confidence": 0.0, "max_unconfirmed": 0, **changes}
    del settings["checkpoint"]  # the models are given
    return InstanceTracker.with_models(*models, **settings).settings


def frames_per_candidate(models, oracle=None, **changes) -> list[list[int]]:
    window = FeatureWindow(*models, lambda t: FRAMES[t], capacity=32)
    candidates = Propagator(models[1], instance_level(models, **changes), oracle).run(PROPOSED, window.__getitem__)
    return [sorted(candidate.frames) for candidate in candidates]


class GoesOn(oracles.Oracle):
    """Lets every direction go on past the guard, and records what it was asked."""

    def __init__(self):
        self.videos, self.guarded, self.kept = [], [], []

    def start_video(self, proposals):
        self.videos.append(proposals.meta.key)

    def guard(self, instance):
        self.guarded.append(max(instance.frames))
        return oracles.GuardDecision(stops=False)

    def kept_fill(self, instance, item):
        self.kept.append(item.frame)
        return dataclasses.replace(item, score=-1.0)


def test_the_tracker_s_own_guard_stops_the_unconfirmed_direction_and_drops_its_tail(models):
    assert frames_per_candidate(models) == [[0, 1, 2]]
    assert frames_per_candidate(models, oracles.Oracle()) == [[0, 1, 2]]
    assert frames_per_candidate(models, max_unconfirmed=None) == [[0, 1, 2, 3, 4]]


def test_an_oracle_s_guard_may_let_a_direction_go_on_and_rewrite_the_fills_it_keeps(models):
    oracle = GoesOn()
    window = FeatureWindow(*models, lambda t: FRAMES[t], capacity=32)
    (candidate,) = Propagator(models[1], instance_level(models), oracle).run(PROPOSED, window.__getitem__)
    assert sorted(candidate.frames) == [0, 1, 2, 3, 4]
    assert oracle.videos == ["squares"]
    assert oracle.guarded == [3, 4]  # asked at each frame past max_unconfirmed, after the fill
    assert oracle.kept == [3, 4] and [candidate.frames[t].score for t in (3, 4)] == [-1.0, -1.0]


def test_a_fill_the_guard_drops_is_not_offered_to_the_oracle(models):
    class Records(oracles.Oracle):
        def __init__(self):
            self.kept = []

        def kept_fill(self, instance, item):
            self.kept.append(item.frame)
            return item

    oracle = Records()
    assert frames_per_candidate(models, oracle) == [[0, 1, 2]]
    assert oracle.kept == []


def test_a_propagator_asks_the_oracle_of_the_enclosing_block_unless_given_one(models):
    given, enclosing = GoesOn(), GoesOn()
    settings = instance_level(models)
    assert Propagator(models[1], settings).oracle is oracles.TRACKER
    with oracles.deciding(enclosing):
        assert Propagator(models[1], settings).oracle is enclosing
        assert Propagator(models[1], settings, given).oracle is given
        assert frames_per_candidate(models) == [[0, 1, 2, 3, 4]]
    assert oracles.current() is oracles.TRACKER


def test_the_enclosing_oracle_is_restored_when_the_block_fails():
    with pytest.raises(RuntimeError):
        with oracles.deciding(GoesOn()):
            raise RuntimeError("tracking failed")
    assert oracles.current() is oracles.TRACKER


ON_THE_GPU = pytest.param("cuda", marks=[pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(),
                                                                          reason="needs a CUDA device")])


@pytest.mark.parametrize("device", ["cpu", ON_THE_GPU])
@torch.no_grad()  # as Propagator.run
def test_the_instances_masks_stay_on_the_heads_device_from_step_to_step(models, device):
    detector, heads = (copy.deepcopy(model).to(device) for model in models)
    window = FeatureWindow(detector, heads, lambda t: FRAMES[t], capacity=32)
    propagator = Propagator(heads, instance_level((detector, heads)))
    (instance,) = propagator.make_instances(PROPOSED.frames[0], window[0], 0)
    assert instance.mask.device.type == device and instance.box.device.type == "cpu"
    result = propagator.step([instance], window[1], window[0])
    assert result.masks.device.type == result.moved.device.type == device and result.boxes.device.type == "cpu"
    assert all(mask.device.type == "cpu" for mask in result.host_masks())  # one copy a step, for the RLEs
    propagator._fill(instance, result, 0, 1)  # the heads' mask: kept where it is
    assert instance.mask.device.type == device and instance.frames[1].mask == result.encoded_masks()[0]
    propagator._confirm(instance, proposal_snap(PROPOSED.frames[2], 0), 2)  # a proposal's mask: decoded, moved there
    assert instance.mask.device.type == device and float(instance.mask.sum()) == 144
