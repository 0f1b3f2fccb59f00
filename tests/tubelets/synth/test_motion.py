import dataclasses

import numpy as np
import pytest

from tubelets.synth import motion, shapes, spec
from tubelets.synth.spec import DEFAULT_SPEC, HARD_SPEC

WIDTH, HEIGHT = 256, 192
RADII = tuple(r * min(WIDTH, HEIGHT) for r in spec.OBJECT_RADIUS)


def fully_outside(trajectory: motion.Trajectory, frame: int) -> bool:
    x, y = trajectory.centres[frame]
    reach = shapes.SHAPE_REACH * trajectory.radii[frame]
    return x < -reach or y < -reach or x > WIDTH + reach or y > HEIGHT + reach


def test_smooth_random_stays_in_range_and_hits_its_knots():
    rng = np.random.default_rng(0)
    for knots in (2, 3, 6):
        curve = motion.smooth_random(rng, 40, knots, -2.0, 3.0)
        assert curve.shape == (40,) and curve.min() >= -2.0 and curve.max() <= 3.0
    assert motion.smooth_random(rng, 1, 4, 0.0, 1.0).shape == (1,)
    two = motion.smooth_random(np.random.default_rng(5), 11, 2, 0.0, 1.0)
    np.testing.assert_allclose(np.diff(two, 2), 0.0, atol=1e-12)  # two knots: a straight ramp


@pytest.mark.parametrize("scene", [DEFAULT_SPEC, HARD_SPEC], ids=["default", "hard"])
def test_trajectories_keep_radius_in_range_and_nan_before_start(scene):
    rng = np.random.default_rng(1)
    for _ in range(100):
        length = int(rng.integers(scene.frames[0], scene.frames[1] + 1))
        trajectory = motion.sample_trajectory(rng, length, WIDTH, HEIGHT, RADII, scene)
        live = slice(trajectory.start, None)
        assert trajectory.centres.shape == (length, 2) and trajectory.radii.shape == (length,)
        assert np.isnan(trajectory.centres[: trajectory.start]).all()
        assert np.isfinite(trajectory.centres[live]).all() and np.isfinite(trajectory.angles[live]).all()
        radii = trajectory.radii[live]
        assert radii.min() >= RADII[0] - 1e-9 and radii.max() <= RADII[1] + 1e-9
        assert radii.max() / radii.min() <= scene.radius_change + 1e-9
        assert trajectory.present(length - 1)
        assert trajectory.start == 0 or not trajectory.present(trajectory.start - 1)


def test_objects_enter_late_and_leave_in_both_modes():
    for scene in (DEFAULT_SPEC, HARD_SPEC):
        rng = np.random.default_rng(2)
        length = scene.frames[0]  # the shortest videos are the hardest to enter or leave in
        trajectories = [motion.sample_trajectory(rng, length, WIDTH, HEIGHT, RADII, scene) for _ in range(200)]
        late = [t for t in trajectories if t.start > 0]
        assert 0.1 < len(late) / len(trajectories) < 0.6
        assert all(fully_outside(t, t.start) for t in late)  # they come in from outside
        entered = sum(not fully_outside(t, len(t.radii) - 1) for t in late)
        assert entered > 0.8 * len(late)
        left = sum(fully_outside(t, len(t.radii) - 1) for t in trajectories if t.start == 0)
        assert left > 0.1 * len(trajectories)


def test_hard_motion_is_faster_and_changes_speed():
    def speeds(scene):
        rng = np.random.default_rng(3)
        steps = []
        for _ in range(100):
            trajectory = motion.sample_trajectory(rng, 40, WIDTH, HEIGHT, RADII, scene)
            steps.append(np.linalg.norm(np.diff(trajectory.centres[trajectory.start :], axis=0), axis=1))
        return steps

    def variation(steps):
        return np.median([s.std() / s.mean() for s in steps])

    default, hard = speeds(DEFAULT_SPEC), speeds(HARD_SPEC)
    assert np.median(np.concatenate(hard)) > 1.5 * np.median(np.concatenate(default))
    assert variation(hard) > variation(default)


def test_camera_is_still_or_pans_within_its_speed():
    rng = np.random.default_rng(4)
    paths = [motion.sample_camera_path(rng, 30, HEIGHT, HARD_SPEC) for _ in range(50)]
    assert all(np.all(p[0] == 0) for p in paths)
    panning = [p for p in paths if np.abs(p).max() > 0]
    assert 0 < len(panning) < len(paths)
    top = HARD_SPEC.pan_speed * HEIGHT
    assert max(np.abs(np.diff(p, axis=0)).max() for p in panning) <= top + 1e-9
    still = dataclasses.replace(DEFAULT_SPEC, pan=0.0)
    assert not motion.sample_camera_path(rng, 12, HEIGHT, still).any()
