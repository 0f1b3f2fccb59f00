import numpy as np
import pytest
from scipy import ndimage
from scipy.spatial import Delaunay

from tubelets.synth import shapes, spec
from tubelets.synth.shapes import Placement, Shape

RADIUS = 40.0
SIZE = 120


def draw(name: str, angle: float = 0.0, **params) -> np.ndarray:
    shape = Shape(spec.CATEGORY_IDS[name], params)
    return shapes.rasterize(shape, Placement(60.0, 60.0, angle, RADIUS), SIZE, SIZE).mask


def hull_fill(mask: np.ndarray) -> float:
    """Share of the pixels inside the convex hull of a mask's pixels that the mask holds.

    A convex shape holds the hull of any of its points, so this is 1 for convex shapes.
    """
    hull = Delaunay(np.argwhere(mask))
    inside_hull = hull.find_simplex(np.indices(mask.shape).reshape(2, -1).T, tol=1e-9) >= 0
    return mask.sum() / inside_hull.sum()


def components(mask: np.ndarray) -> int:
    return ndimage.label(mask)[1]


def remove_disc(mask: np.ndarray, radius: float) -> np.ndarray:
    rows, cols = np.indices(mask.shape) + 0.5
    return mask & (np.hypot(cols - 60.0, rows - 60.0) > radius)


@pytest.mark.parametrize(
    "name, params, expected_area",
    [
        ("disc", {"axis_ratio": 0.7}, np.pi * 0.7),
        ("box", {"aspect": 2.0}, 4 * 2.0 / 5.0),
        ("star", {"inner_ratio": 0.45}, 5 * 0.45 * np.sin(np.pi / 5)),
        ("ring", {"inner_ratio": 0.55}, np.pi * (1 - 0.55**2)),
        ("cross", {"arm_width": 0.4}, 8 * 0.4 - 4 * 0.4**2),
        ("triangle", {"vertices": ((0.0, 1.0), (-np.sqrt(0.75), -0.5), (np.sqrt(0.75), -0.5))}, 3 * np.sqrt(3) / 4),
    ],
)
def test_area_matches_geometry(name, params, expected_area):
    area = draw(name, angle=0.37, **params).sum()
    assert area == pytest.approx(expected_area * RADIUS**2, rel=0.02)


def test_ring_has_a_hole_of_the_inner_radius():
    mask = draw("ring", inner_ratio=0.6)
    assert not mask[60, 60]
    hole = ndimage.binary_fill_holes(mask) & ~mask
    assert components(mask) == 1 and components(hole) == 1
    assert hole.sum() == pytest.approx(np.pi * (0.6 * RADIUS) ** 2, rel=0.03)


def test_star_has_five_points_and_is_concave():
    mask = draw("star", angle=1.1, inner_ratio=0.45)
    assert mask[60, 60]
    assert components(remove_disc(mask, 0.75 * RADIUS)) == 5
    assert hull_fill(mask) < 0.75


def test_cross_has_four_arms():
    mask = draw("cross", angle=0.5, arm_width=0.35)
    assert components(remove_disc(mask, 0.6 * RADIUS)) == 4
    assert hull_fill(mask) < 0.8


@pytest.mark.parametrize(
    "name, params",
    [("disc", {"axis_ratio": 0.6}), ("box", {"aspect": 0.5}), ("triangle", None)],
)
def test_convex_shapes_fill_their_hull(name, params):
    params = params or {"vertices": shapes._sample_triangle(np.random.default_rng(1))}
    mask = draw(name, angle=0.8, **params)
    assert components(mask) == 1
    assert hull_fill(mask) == pytest.approx(1.0, abs=1e-9)


def test_disc_axis_ratio_and_box_aspect_are_drawn():
    disc = draw("disc", angle=0.0, axis_ratio=0.6)
    rows, cols = np.nonzero(disc)
    assert (np.ptp(rows) + 1) / (np.ptp(cols) + 1) == pytest.approx(0.6, abs=0.03)
    box = draw("box", angle=0.0, aspect=1.5)
    rows, cols = np.nonzero(box)
    assert (np.ptp(cols) + 1) / (np.ptp(rows) + 1) == pytest.approx(1.5, abs=0.05)
    assert np.hypot(np.ptp(cols) + 1, np.ptp(rows) + 1) == pytest.approx(2 * RADIUS, abs=2)


def test_rotation_by_a_quarter_turn_swaps_the_box_sides():
    turned = draw("box", angle=np.pi / 2, aspect=2.0)
    swapped = draw("box", angle=0.0, aspect=0.5)
    assert (turned != swapped).sum() <= 0.01 * swapped.sum()


def test_mask_is_exactly_the_pixels_whose_centres_are_inside():
    shape = Shape(spec.CATEGORY_IDS["star"], {"inner_ratio": 0.4})
    placement = Placement(31.3, 27.8, 0.9, 20.0)
    raster = shapes.rasterize(shape, placement, 64, 64)
    rows, cols = np.indices((64, 64))
    dx, dy = cols + 0.5 - placement.x, rows + 0.5 - placement.y
    u = (dx * np.cos(0.9) + dy * np.sin(0.9)) / 20.0
    v = (dy * np.cos(0.9) - dx * np.sin(0.9)) / 20.0
    np.testing.assert_array_equal(raster.mask, shapes.inside(shape, u, v))
    np.testing.assert_allclose(raster.u, u[raster.mask])
    np.testing.assert_allclose(raster.v, v[raster.mask])


def test_shapes_are_cut_at_the_frame_edge_and_vanish_outside():
    shape = Shape(spec.CATEGORY_IDS["disc"], {"axis_ratio": 1.0})
    half = shapes.rasterize(shape, Placement(0.0, 30.0, 0.0, 10.0), 60, 60)
    assert half.mask.sum() == pytest.approx(np.pi * 100 / 2, rel=0.06)
    assert len(half.u) == half.mask.sum()
    gone = shapes.rasterize(shape, Placement(-12.0, 30.0, 0.0, 10.0), 60, 60)
    assert not gone.mask.any() and gone.mask.shape == (60, 60) and len(gone.u) == 0


def test_star_shaped_polygon_test_on_a_square():
    square = np.array([[1, 1], [-1, 1], [-1, -1], [1, -1]], dtype=float)
    u = np.array([0.0, 0.9, -0.99, 1.01, 0.0, 2.0])
    v = np.array([0.0, 0.9, 0.5, 0.0, -1.2, 2.0])
    np.testing.assert_array_equal(shapes.inside_star_shaped_polygon(u, v, square), [1, 1, 1, 0, 0, 0])


def test_sampled_parameters_stay_in_the_spec_ranges():
    rng = np.random.default_rng(0)
    ranges = {
        "disc": ("axis_ratio", spec.DISC_AXIS_RATIO),
        "box": ("aspect", spec.BOX_ASPECT),
        "star": ("inner_ratio", spec.STAR_INNER_RATIO),
        "ring": ("inner_ratio", spec.RING_INNER_RATIO),
        "cross": ("arm_width", spec.CROSS_ARM_WIDTH),
    }
    for _ in range(200):
        for name, (key, (low, high)) in ranges.items():
            assert low <= shapes.sample_shape(rng, spec.CATEGORY_IDS[name]).params[key] <= high
        vertices = np.array(shapes.sample_shape(rng, spec.CATEGORY_IDS["triangle"]).params["vertices"])
        assert np.all(np.hypot(vertices[:, 0], vertices[:, 1]) <= 1.0)
        # Near-equilateral, never a sliver: the worst case of the jitter and vertex radii
        # (central angles 80 and 143 degrees) gives a side ratio of about 0.57.
        sides = [np.linalg.norm(vertices[i] - vertices[i - 1]) for i in range(3)]
        assert min(sides) > 0.55 * max(sides)


def test_every_shape_stays_within_its_reach():
    rng = np.random.default_rng(2)
    grid = np.linspace(-1.5, 1.5, 301)
    u, v = np.meshgrid(grid, grid)
    for category in spec.CATEGORIES:
        covered = shapes.inside(shapes.sample_shape(rng, category["id"]), u, v)
        assert np.hypot(u, v)[covered].max() <= shapes.SHAPE_REACH
