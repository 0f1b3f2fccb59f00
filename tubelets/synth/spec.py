"""The Shapes-VIS specification: categories, thresholds and the ranges a scene is drawn from.

Every number the generator samples from lives here, once, so the tests can check
generated scenes against the same ranges and a reader can see the whole data set
contract in one screen. Lengths that depend on the frame size (object radii, speeds)
are fractions of the shorter frame side.
"""

from __future__ import annotations

import dataclasses
import math

# The data set version written to ``instances.json["info"]``; bump it whenever a change
# alters the frames or annotations generated for a seed.
GENERATOR_VERSION = "1.0"

CATEGORIES: list[dict] = [
    {"id": 1, "name": "disc", "supercategory": "shape"},
    {"id": 2, "name": "box", "supercategory": "shape"},
    {"id": 3, "name": "triangle", "supercategory": "shape"},
    {"id": 4, "name": "star", "supercategory": "shape"},
    {"id": 5, "name": "ring", "supercategory": "shape"},
    {"id": 6, "name": "cross", "supercategory": "shape"},
]
CATEGORY_IDS: dict[str, int] = {c["name"]: c["id"] for c in CATEGORIES}
CATEGORY_NAMES: dict[int, str] = {c["id"]: c["name"] for c in CATEGORIES}

# An instance with fewer visible pixels than this in a frame is not annotated there.
MIN_VISIBLE_PIXELS = 12

# Shape parameter ranges (see shapes.py for what each one means).
DISC_AXIS_RATIO = (0.6, 1.0)
BOX_ASPECT = (0.5, 2.0)
STAR_POINTS = 5
STAR_INNER_RATIO = (0.4, 0.5)
RING_INNER_RATIO = (0.45, 0.65)
CROSS_ARM_WIDTH = (0.3, 0.45)
TRIANGLE_ANGLE_JITTER = 0.2  # radians each vertex may stray from an equilateral layout
TRIANGLE_VERTEX_RADIUS = (0.85, 1.0)

# Object radius (half its extent) as a fraction of the shorter frame side.
OBJECT_RADIUS = (0.08, 0.25)

# Fills.
STRIPE_PERIOD_PX = (4.0, 10.0)
FILL_KINDS = ("solid", "stripes", "noise")

FPS = 10


@dataclasses.dataclass(frozen=True)
class SceneSpec:
    """Ranges for one difficulty level. ``(low, high)`` pairs are inclusive sample ranges.

    Speeds are in units of the shorter frame side per frame, so a scene looks the
    same at any resolution; angular speeds are in radians per frame.
    """

    frames: tuple[int, int]
    objects: tuple[int, int]
    speed: tuple[float, float]
    speed_knots: int  # knots of the speed profile: 2 is nearly constant, more is changing
    turn: float  # largest heading change over a video, radians
    turn_knots: int
    spin: tuple[float, float]  # |angular speed| range
    radius_change: float  # largest factor between the radius at two knots
    radius_knots: int
    late_start: float  # share of objects that enter after frame 0
    leave: float  # share of objects headed out of the frame
    pan: float  # share of videos with a panning camera
    pan_speed: float  # largest camera speed (shorter sides per frame)
    pan_knots: int
    blobs: tuple[int, int]  # background clutter counts
    lines: tuple[int, int]
    sensor_noise: tuple[float, float]  # std of per-pixel noise, grey levels
    blur: tuple[float, float]  # Gaussian blur sigma in pixels; (0, 0) is none
    flicker: float  # largest relative brightness change from one frame to the next
    repeat_category: float  # chance an object reuses a category already in the video


DEFAULT_SPEC = SceneSpec(
    frames=(12, 36),
    objects=(1, 4),
    speed=(0.004, 0.02),
    speed_knots=2,
    turn=0.4,
    turn_knots=2,
    spin=(0.0, 0.06),
    radius_change=1.4,
    radius_knots=2,
    late_start=0.25,
    leave=0.3,
    pan=0.5,
    pan_speed=0.008,
    pan_knots=2,
    blobs=(3, 7),
    lines=(2, 5),
    sensor_noise=(1.5, 3.0),
    blur=(0.0, 0.0),
    flicker=0.0,
    repeat_category=0.3,
)

HARD_SPEC = SceneSpec(
    frames=(24, 60),
    objects=(3, 7),
    speed=(0.008, 0.045),
    speed_knots=5,
    turn=2.0,
    turn_knots=5,
    spin=(0.02, 0.15),
    radius_change=1.8,
    radius_knots=4,
    late_start=0.35,
    leave=0.35,
    pan=0.8,
    pan_speed=0.02,
    pan_knots=4,
    blobs=(5, 10),
    lines=(3, 7),
    sensor_noise=(2.0, 5.0),
    blur=(0.5, 1.6),
    flicker=0.15,
    repeat_category=0.4,
)


def scene_spec(hard: bool) -> SceneSpec:
    """The ranges of the default or the ``--hard`` data set."""
    return HARD_SPEC if hard else DEFAULT_SPEC


# Domains: the same scenes (categories, shapes, motion, masks) seen through another world and camera.
# "source" is the data set every model here was trained on and renders exactly as it always did;
# another domain changes only how frames look, never what is annotated.
SOURCE_DOMAIN = "source"


@dataclasses.dataclass(frozen=True)
class DomainSpec:
    """Ranges of one domain's look, sampled once per video (noise once per frame).

    Colours are transformed about the grey axis: chroma scaled by ``saturation`` and
    rotated by ``hue_rotation`` (radians), then each RGB channel multiplied by
    ``white_balance`` (jittered by up to ``white_balance_jitter``). Lighting multiplies
    the frame by ``exposure`` times a linear gradient (``light_gradient`` is the
    relative change from the frame's centre to its edge, direction uniform) times a
    vignette (``vignette`` is the relative darkening in the corners).
    """

    saturation: tuple[float, float]
    hue_rotation: tuple[float, float]
    white_balance: tuple[float, float, float]
    white_balance_jitter: float
    exposure: tuple[float, float]
    light_gradient: tuple[float, float]
    vignette: tuple[float, float]
    texture_contrast: tuple[float, float]  # amplitude of the woven background texture, grey levels
    texture_period_px: tuple[float, float]  # its full period in pixels (canvas-fixed: it pans with the camera)
    blur: tuple[float, float]  # lens blur sigma in pixels, on top of the scene's own
    sensor_noise: tuple[float, float]  # std of extra per-pixel noise, grey levels, on top of the scene's own
    jpeg_quality: tuple[int, int]  # the camera's own JPEG compression (4:2:0), before the data set is written


DOMAINS: dict[str, DomainSpec | None] = {
    SOURCE_DOMAIN: None,
    # A dim, washed-out, cold camera over woven ground: hues turned by 35-70 degrees, a third to
    # a half of the chroma left, a blue cast, uneven light, soft focus, grain and blocky compression.
    "shifted": DomainSpec(
        saturation=(0.35, 0.6),
        hue_rotation=(0.6, 1.2),
        white_balance=(0.88, 1.0, 1.14),
        white_balance_jitter=0.04,
        exposure=(0.7, 0.9),
        light_gradient=(0.15, 0.35),
        vignette=(0.25, 0.45),
        texture_contrast=(18.0, 35.0),
        texture_period_px=(5.0, 12.0),
        blur=(0.6, 1.2),
        sensor_noise=(4.0, 8.0),
        jpeg_quality=(20, 40),
    ),
    # Training variety, not a test look: each video a camera of its own around the source look, any hue
    # turn, milder than "shifted" on every other axis (saturation, exposure, texture, blur, noise and JPEG
    # stop short of its ranges), so "shifted" stays a look no model has been trained on.
    "varied": DomainSpec(
        saturation=(0.65, 1.3),
        hue_rotation=(-math.pi, math.pi),
        white_balance=(1.0, 1.0, 1.0),
        white_balance_jitter=0.1,
        exposure=(0.92, 1.2),
        light_gradient=(0.0, 0.3),
        vignette=(0.0, 0.25),
        texture_contrast=(0.0, 15.0),
        texture_period_px=(4.0, 16.0),
        blur=(0.0, 0.5),
        sensor_noise=(0.0, 3.5),
        jpeg_quality=(50, 95),
    ),
}


def domain_spec(name: str) -> DomainSpec | None:
    """The look of domain ``name`` (``None`` for the source domain); ``ValueError`` for an unknown one."""
    if name not in DOMAINS:
        raise ValueError(f"unknown domain {name!r}; choose one of {', '.join(DOMAINS)}")
    return DOMAINS[name]
