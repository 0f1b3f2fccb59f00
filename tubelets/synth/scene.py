"""One Shapes-VIS video in memory: sample a scene, render its frames and visible masks.

Objects keep one depth order for the whole video; each frame is painted back to
front over the camera's view of the background, and an instance's mask is the part
of its shape no nearer object covers. Masks are taken before blur, flicker and
noise, and a frame where fewer than ``MIN_VISIBLE_PIXELS`` pixels show is ``None``.
A domain other than the source one (``spec.DOMAINS``) changes the frames' look only
(``domain``): same seed, same scene, same masks.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from tubelets.synth import appearance, domain as domains, shapes, spec
from tubelets.synth.background import Background, make_background
from tubelets.synth.effects import Effects, apply_effects, sample_effects
from tubelets.synth.motion import Trajectory, sample_camera_path, sample_trajectory

MIN_FRAME_SIDE = 32


@dataclasses.dataclass(frozen=True)
class SceneObject:
    """What is sampled for one object before rendering. ``depth`` 0 is nearest the camera."""

    category_id: int
    shape: shapes.Shape
    fill: appearance.Fill
    trajectory: Trajectory
    depth: int


@dataclasses.dataclass(frozen=True)
class SyntheticInstance(SceneObject):
    """A rendered object. ``masks`` has one entry per frame: the visible part,
    ``bool [H, W]``, or ``None`` where fewer than ``MIN_VISIBLE_PIXELS`` show."""

    masks: list

    @property
    def visible_frames(self) -> list[int]:
        return [t for t, mask in enumerate(self.masks) if mask is not None]

    def mask_array(self) -> np.ndarray:
        """All frames' visible masks as ``bool [T, H, W]`` (all ``False`` where ``None``)."""
        shape = next(m.shape for m in self.masks if m is not None)
        return np.stack([m if m is not None else np.zeros(shape, dtype=bool) for m in self.masks])


@dataclasses.dataclass
class SyntheticVideo:
    """Frames ``uint8 [T, H, W, 3]`` RGB and the instances seen in them (those visible
    in at least one frame), with the camera offsets ``float [T, 2]`` that were used."""

    frames: np.ndarray
    instances: list[SyntheticInstance]
    camera: np.ndarray
    hard: bool
    domain: str = spec.SOURCE_DOMAIN

    @property
    def length(self) -> int:
        return int(self.frames.shape[0])

    @property
    def height(self) -> int:
        return int(self.frames.shape[1])

    @property
    def width(self) -> int:
        return int(self.frames.shape[2])


def generate_video(
    rng_or_seed: np.random.Generator | int,
    width: int = 256,
    height: int = 192,
    hard: bool = False,
    domain: str = spec.SOURCE_DOMAIN,
) -> SyntheticVideo:
    """Sample and render one video; the same seed (or generator state) gives the same video.

    ``domain`` (a key of ``spec.DOMAINS``) picks the look; any domain renders the scene the
    source domain renders for the same seed, so the annotations are the same.
    """
    check_frame_size(width, height)
    look_spec = spec.domain_spec(domain)
    rng = np.random.default_rng(rng_or_seed)
    # The look's own generator, spawned before any draw: the scene's draws below stay the source domain's.
    look_rng = rng.spawn(1)[0] if look_spec is not None else None
    scene = spec.scene_spec(hard)
    length = int(rng.integers(scene.frames[0], scene.frames[1] + 1))
    camera = sample_camera_path(rng, length, min(width, height), scene)
    background = make_background(rng, height, width, camera, scene)
    objects = _sample_objects(rng, length, width, height, background, scene)
    effects = sample_effects(rng, length, scene)
    look = None
    if look_spec is not None:
        look = domains.sample_look(look_rng, height, width, look_spec)
        background = domains.texture_background(look_rng, background, look_spec)
    frames, masks = render_scene(objects, background, camera, effects, rng, height, width, look)
    instances = [
        SyntheticInstance(**{f.name: getattr(o, f.name) for f in dataclasses.fields(o)}, masks=m)
        for o, m in zip(objects, masks)
        if any(mask is not None for mask in m)
    ]
    return SyntheticVideo(frames, instances, camera, hard, domain)


def check_frame_size(width: int, height: int) -> None:
    """Raise ``ValueError`` unless both sides are integers of at least ``MIN_FRAME_SIDE``."""
    for name, value in (("width", width), ("height", height)):
        if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < MIN_FRAME_SIDE:
            raise ValueError(f"frame {name} must be an integer of at least {MIN_FRAME_SIDE} pixels, got {value!r}")


def _sample_objects(rng, length: int, width: int, height: int, background: Background, scene) -> list[SceneObject]:
    """Categories (repeats allowed), outlines, paths, fills and a random depth order."""
    count = int(rng.integers(scene.objects[0], scene.objects[1] + 1))
    radius_range = tuple(r * min(width, height) for r in spec.OBJECT_RADIUS)
    depths = rng.permutation(count)
    categories: list[int] = []
    objects = []
    for index in range(count):
        if categories and rng.random() < scene.repeat_category:
            category_id = categories[int(rng.integers(len(categories)))]
        else:
            category_id = int(rng.integers(1, len(spec.CATEGORIES) + 1))
        categories.append(category_id)
        shape = shapes.sample_shape(rng, category_id)
        trajectory = sample_trajectory(rng, length, width, height, radius_range, scene)
        fill = appearance.sample_fill(rng, background.mean_colour, trajectory.radii[trajectory.start])
        objects.append(SceneObject(category_id, shape, fill, trajectory, int(depths[index])))
    return objects


def render_scene(
    objects: list[SceneObject],
    background: Background,
    camera: np.ndarray,
    effects: Effects,
    rng: np.random.Generator,
    height: int,
    width: int,
    look: domains.Look | None = None,
) -> tuple[np.ndarray, list[list]]:
    """Frames ``uint8 [T, H, W, 3]`` (``T = len(camera)``) and, per object, its per-frame
    visible masks (``bool [H, W]`` or ``None``). ``rng`` draws the sensor noise.

    ``look`` (another domain's) shades each painted frame before the
    scene's effects and degrades it after them; ``None`` renders the source domain."""
    frames = np.empty((len(camera), height, width, 3), dtype=np.uint8)
    masks: list[list] = [[] for _ in objects]
    depths = [obj.depth for obj in objects]
    for t in range(len(camera)):
        canvas = background.crop(camera[t], height, width)
        shapes_drawn = _paint_objects(canvas, objects, t)
        for i, mask in enumerate(visible_parts(shapes_drawn, depths)):
            masks[i].append(mask)
        if look is None:
            frames[t] = apply_effects(canvas, t, effects, rng)
        else:
            frames[t] = domains.degrade(apply_effects(domains.shade(canvas, look), t, effects, rng), look)
    return frames, masks


def _paint_objects(canvas: np.ndarray, objects: list[SceneObject], t: int) -> list:
    """Paint frame ``t``'s objects back to front onto ``canvas`` (``float32 [H, W, 3]``, in
    place); returns each object's full shape mask ``bool [H, W]`` (``None`` if absent)."""
    height, width = canvas.shape[:2]
    full: list = [None] * len(objects)
    for i in sorted(range(len(objects)), key=lambda k: -objects[k].depth):
        obj = objects[i]
        if obj.trajectory.present(t):
            placement = obj.trajectory.placement(t)
            raster = shapes.rasterize(obj.shape, placement, height, width)
            canvas[raster.mask] = appearance.fill_colours(obj.fill, raster.u, raster.v, placement.radius)
            full[i] = raster.mask
    return full


def visible_parts(full_masks: list, depths: list[int]) -> list:
    """Each shape's part that no nearer shape covers, or ``None`` below ``MIN_VISIBLE_PIXELS``.

    ``full_masks`` are ``bool [H, W]`` or ``None`` (absent); ``depths`` 0 is nearest.
    """
    visible: list = [None] * len(full_masks)
    covered = None
    for i in sorted(range(len(full_masks)), key=lambda k: depths[k]):
        if full_masks[i] is None:
            continue
        covered = np.zeros_like(full_masks[i]) if covered is None else covered
        own = full_masks[i] & ~covered
        covered |= full_masks[i]
        visible[i] = own if own.sum() >= spec.MIN_VISIBLE_PIXELS else None
    return visible
