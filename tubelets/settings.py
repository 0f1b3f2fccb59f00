"""The typed shape of a merged config: every value checked before any video is read.

``configs/default.yaml`` stays the one home of the defaults, so no field here
has a default: the models only check. Types are strict (``"3"`` is not an
integer, ``true`` is not a number; an integer is a fine number) and ranges
follow what the code that reads each key accepts. :func:`validate_config`
turns pydantic's report into one line naming the dotted key, e.g.
``config proposals.batch_size must be an integer >= 1, got 'abc'``.

A section that one reader takes whole (a tracker's) holds exactly the keys it
reads: any other key is refused in one line that says so and lists the ones
it reads (:func:`not_read`), instead of being accepted and ignored.
"""

import dataclasses
import datetime
from typing import Annotated, Any, ClassVar, Literal, Mapping, Optional, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from tubelets.errors import ConfigError

# Kept equal to tubelets.tables.TASKS, the detector preset registry and the tracker registry by tests; not imported
# from there so that loading a config pulls in neither pyarrow nor torch.
TASKS = ("vis", "vos", "point")
DETECTOR_PRESETS = ("small", "r50-fpn")
TRACKER_NAMES = ("ipdt", "pixel", "instance", "iou")


@dataclasses.dataclass(frozen=True)
class Expect:
    """What a value must be, in words: pydantic's own messages ("should be a valid integer") omit the range."""

    text: str


def one_of(*choices: str) -> Any:
    """A string that is one of ``choices``."""
    return Annotated[Literal[choices], Expect("one of " + ", ".join(choices))]


def _ordered_pair(pair: list[float]) -> list[float]:
    # Both consumers draw from uniform(low, high) (a log-uniform or a resize between the two sizes).
    if pair[0] > pair[1]:
        raise ValueError("must be [low, high] with low <= high")
    return pair


# Shared value types: the second Annotated argument checks, the Expect says it in words.
Count = Annotated[int, Field(ge=1), Expect("an integer >= 1")]
NonNegativeInt = Annotated[int, Field(ge=0), Expect("an integer >= 0")]
OptionalCount = Annotated[Optional[Annotated[int, Field(ge=1)]], Expect("an integer >= 1 or null")]
OptionalNonNegativeInt = Annotated[Optional[Annotated[int, Field(ge=0)]], Expect("an integer >= 0 or null")]
Window = Annotated[int, Field(ge=2), Expect("an integer >= 2")]  # the least the trackers and segmenter accept
Fraction = Annotated[float, Field(ge=0, le=1), Expect("a number in [0, 1]")]
OptionalFraction = Annotated[Optional[Annotated[float, Field(ge=0, le=1)]], Expect("a number in [0, 1] or null")]
NonNegative = Annotated[float, Field(ge=0), Expect("a number >= 0")]
OptionalNonNegative = Annotated[Optional[Annotated[float, Field(ge=0)]], Expect("a number >= 0 or null")]
Positive = Annotated[float, Field(gt=0), Expect("a number > 0")]
OptionalPositive = Annotated[Optional[Annotated[float, Field(gt=0)]], Expect("a number > 0 or null")]
Margin = Annotated[float, Field(ge=1), Expect("a number >= 1")]  # a box grown by this factor
Switch = Annotated[bool, Expect("true or false")]
Url = Annotated[Optional[str], Expect("a URL (fsspec or builtin:NAME) or null")]
Device = Annotated[str, Field(pattern=r"^(auto|cpu|cuda(:[0-9]+)?)$"), Expect("one of auto, cpu, cuda, cuda:N")]
Precision = one_of("auto", "float32", "bfloat16", "float16")  # tubelets.models.inference.PRECISIONS and auto
Range = Annotated[
    list[Annotated[float, Field(gt=0)]],
    Field(min_length=2, max_length=2),
    AfterValidator(_ordered_pair),
    Expect("[low, high], two numbers > 0 with low <= high"),
]
Milestones = Annotated[list[Annotated[float, Field(ge=0)]], Expect("a list of numbers >= 0")]  # past 1: never
Source = one_of("jpeg", "video")
Task = one_of(*TASKS)
VideoSource = one_of("video", "jpeg")
Preset = one_of(*DETECTOR_PRESETS)
Optimizer = one_of("adamw", "sgd")
Schedule = one_of("cosine", "step")
TrackerName = one_of(*TRACKER_NAMES)


class Section(BaseModel):
    # strict: YAML already gives typed values, so a string where a number belongs is a mistake, not a conversion.
    model_config = ConfigDict(strict=True, extra="forbid")
    # Who reads this section's keys, for a section one reader takes whole ("the pixel tracker"); see not_read.
    READER: ClassVar[Optional[str]] = None


class Run(Section):
    # A run id is a folder name; `--run-id 20240101` arrives as YAML, an integer (or a date), and is as good a name.
    run_id: Annotated[
        Union[str, int, float, datetime.datetime, datetime.date, None], Expect("a name (string) or null")
    ]
    task: Task
    dask_wave_videos: Annotated[int, Field(ge=0), Expect("an integer >= 0 (0: the whole bucket in one pipeline)")]


class Io(Section):
    source: VideoSource
    stride: Count
    fps: OptionalPositive
    max_size: Annotated[Optional[Annotated[int, Field(ge=2)]], Expect("an integer >= 2 or null")]

    @field_validator("fps")
    @classmethod
    def _stride_or_fps(cls, fps: Optional[float], info: ValidationInfo) -> Optional[float]:
        # Decoding keeps frames by stride or by rate, not both: each video would go to dead letters.
        if fps is not None and info.data.get("stride", 1) != 1:
            raise ValueError("must be null unless io.stride is 1 (frames are kept by stride or by fps, not both)")
        return fps


class Proposals(Section):
    batch_size: Count
    torch_threads: OptionalCount
    detect_every: Count
    frames_per_forward: Count


class Detector(Section):
    preset: Preset
    checkpoint: Url
    num_classes: Annotated[int, Field(ge=2), Expect("an integer >= 2 (the background and one class at least)")]
    categories: Annotated[Optional[list[Union[str, int, float]]], Expect("a list of category names or null")]
    # Checked against the checkpoint when it loads (tubelets.models.loading.parse_category_map).
    category_map: Annotated[Optional[dict[Any, Any]], Expect("a mapping {checkpoint_class: category_id} or null")]
    score_threshold: Fraction
    nms_threshold: Fraction
    detections_per_frame: OptionalCount
    # torchvision also takes several shorter-side sizes (one drawn per training image).
    min_size: Annotated[
        Union[Annotated[int, Field(ge=1)], Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=1)], None],
        Expect("an integer >= 1, a list of them, or null"),
    ]
    max_size: OptionalCount
    device: Device
    precision: Precision


class Training(Section):
    """Keys every training section has (tubelets.models.training_loop)."""

    seed: NonNegativeInt  # numpy's SeedSequence takes no negative seed
    steps: NonNegativeInt
    batch_size: Count
    optimizer: Optimizer
    lr: Positive
    momentum: Fraction
    weight_decay: NonNegative
    warmup_steps: NonNegativeInt
    schedule: Schedule
    min_lr_ratio: Fraction
    milestones: Milestones
    clip_grad_norm: OptionalNonNegative  # 0, like null, clips nothing
    checkpoint_every: Count
    release: Switch


class DetectorAugment(Section):
    hflip: Fraction
    scale: Range
    color: NonNegative


class TrainDetector(Training):
    init_from: Url
    source: Source
    frame_stride: Count
    workers: NonNegativeInt
    augment: DetectorAugment


FeatureLevels = Annotated[
    list[Union[Annotated[int, Field(ge=0)], Literal["pool"]]],
    Field(min_length=1),
    Expect("a non-empty list of FPN levels (0, 1, 2, 3, pool)"),
]


class AdaptDetector(Training):
    """``tubelets adapt detector`` (tubelets.models.domain_adaptation)."""

    READER = "tubelets adapt detector"
    init_from: Annotated[str, Expect("a detector checkpoint URL (fsspec or builtin:NAME)")]
    target_batch_size: Count
    source: Source
    frame_stride: Count
    target_frame_stride: Count
    target_frames_per_video: OptionalCount
    workers: NonNegativeInt
    feature_levels: FeatureLevels
    discriminator_width: Count
    domain_weight: NonNegative
    grl_max: NonNegative
    grl_gamma: Positive
    augment: DetectorAugment


class Calibration(Section):
    enabled: Switch
    score_threshold: Fraction
    th_cc: Fraction
    beta: Fraction
    th_iou: Fraction
    other_classes: NonNegativeInt


class IouTracker(Section):
    READER = "the iou tracker"

    max_age: NonNegativeInt
    min_length: Count
    min_similarity: Annotated[float, Field(gt=0, le=1), Expect("a number in (0, 1]")]  # 0 links disjoint pairs
    mask_weight: Fraction
    class_mismatch_scale: Fraction


class PropagatingTracker(Section):
    """Keys ``tracker.ipdt``, ``tracker.pixel`` and ``tracker.instance`` all read (tubelets.models.trackers.ipdt)."""

    checkpoint: Url
    detector_checkpoint: Url
    device: Device
    precision: Precision
    min_confidence: Fraction
    max_lost: NonNegativeInt
    snap_iou: Fraction
    cover_iou: Fraction
    max_unconfirmed: OptionalNonNegativeInt
    switch_iou: OptionalFraction
    th_seq: Fraction
    feature_window: Window


class PixelLevel(Section):
    """The key only the pixel level reads."""

    mask_threshold: Fraction


class InstanceLevel(Section):
    """The keys only the instance level reads."""

    window_influence: Fraction
    max_colour_distance: OptionalPositive
    relink_frames: OptionalNonNegativeInt
    check_fill_colour: Switch


class IpdtTracker(PropagatingTracker, PixelLevel, InstanceLevel):
    READER = "the ipdt tracker"

    box_margin: Margin  # the two levels together only


class PixelTracker(PropagatingTracker, PixelLevel):
    READER = "the pixel tracker"


class InstanceTracker(PropagatingTracker, InstanceLevel):
    READER = "the instance tracker"


class Tracker(Section):
    name: TrackerName
    iou: IouTracker
    ipdt: IpdtTracker
    pixel: PixelTracker
    instance: InstanceTracker


class Scoring(Section):
    checkpoint: Url


class Vos(Section):
    prompts: Annotated[Optional[str], Expect("a prompts URL or null")]
    checkpoint: Url
    detector_checkpoint: Url
    device: Device
    precision: Precision
    mask_threshold: Fraction
    min_confidence: Fraction
    max_lost: NonNegativeInt
    box_margin: Margin
    window_influence: Fraction
    point_threshold: Fraction
    feature_window: Window
    snap_iou: OptionalFraction
    proposal_score: Fraction


class LossWeights(Section):
    discriminator: NonNegative
    box: NonNegative
    mask_bce: NonNegative
    mask_iou: NonNegative


class TrackerAugment(Section):
    reference_jitter: NonNegative
    previous_jitter: NonNegative
    mask_noise: NonNegativeInt
    shift: NonNegative
    scale: Range
    occluders: NonNegativeInt
    occluder_size: Range
    absent: Fraction
    hidden: Fraction
    distractor: Fraction


class TrainTracker(Training):
    max_gap: Count
    source: Source
    # IPDTConfig overrides: IPDTConfig.from_dict names an unknown one when training starts.
    model: Annotated[Optional[dict[str, Any]], Expect("a mapping of IPDT model settings or null")]
    loss_weights: LossWeights
    augment: TrackerAugment


def _lab_channels(dropped: str) -> str:
    if not dropped or set(dropped) - set("Lab") or len(set(dropped)) != len(dropped):
        raise ValueError("must name Lab channels to drop, e.g. ab or L")
    return dropped


ColourDropout = Annotated[
    list[Annotated[str, AfterValidator(_lab_channels)]],
    Field(min_length=1),
    Expect("a non-empty list of Lab channel sets to drop, e.g. [ab, L]"),
]


class AdaptPixel(Training):
    """``tubelets adapt pixel`` (tubelets.models.pixel_adaptation)."""

    READER = "tubelets adapt pixel"
    init_from: Annotated[str, Expect("a tracker checkpoint URL (fsspec or builtin:NAME)")]
    from_scratch: Switch
    memory_gaps: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=1),
                           Expect("a non-empty list of integers >= 1")]
    radius: Count
    colour_dropout: ColourDropout
    huber_delta: Positive
    frames_per_video: Annotated[Optional[Annotated[int, Field(ge=2)]], Expect("an integer >= 2 or null")]


class Settings(Section):
    run: Run
    io: Io
    proposals: Proposals
    detector: Detector
    train_detector: TrainDetector
    adapt_detector: AdaptDetector
    calibration: Calibration
    tracker: Tracker
    scoring: Scoring
    vos: Vos
    train_tracker: TrainTracker
    adapt_pixel: AdaptPixel


def not_read(dotted: str) -> Optional[str]:
    """The one-line refusal of a key that a section's one reader does not read, e.g. ``tracker.pixel.box_margin``.

    None when the key's section has no single reader (the caller says "unknown key" its own way).
    """
    *parents, key = dotted.split(".")
    model: Any = Settings
    for part in parents:
        field = model.model_fields.get(part) if isinstance(model, type) and issubclass(model, BaseModel) else None
        if field is None:
            return None
        model = field.annotation
    reader = getattr(model, "READER", None) if isinstance(model, type) and issubclass(model, BaseModel) else None
    if reader is None or key in model.model_fields:
        return None
    return f"config {dotted} is not read by {reader}; it reads: {', '.join(sorted(model.model_fields))}"


def validate_config(config: Mapping[str, Any]) -> None:
    """Check every value of a merged config; the first problem raises a one-line ``ConfigError``."""
    try:
        Settings.model_validate(config)
    except ValidationError as error:
        raise ConfigError(describe(error, config)) from None


def describe(error: ValidationError, config: Mapping[str, Any]) -> str:
    """One line: the first key at fault, what it must be, the value given, and how many other keys are wrong."""
    problems: dict[str, str] = {}
    for item in error.errors():
        path, field = _field_path(item["loc"])
        key = ".".join(path)
        if key not in problems:  # a union reports once per member: one key, one problem
            problems[key] = _problem(item, key, field, _value_at(config, path))
    keys = list(problems)
    line = problems[keys[0]]
    if len(keys) > 1:
        line += f" (and {len(keys) - 1} more: {', '.join(keys[1:])})"
    return line


def _field_path(loc: tuple) -> tuple[list[str], Any]:
    """The config keys of ``loc`` down to the field at fault (list indices and union tags dropped), and its field."""
    model: Any = Settings
    path: list[str] = []
    field = None
    for part in loc:
        if not (isinstance(model, type) and issubclass(model, BaseModel)):
            break
        path.append(str(part))
        field = model.model_fields.get(part)
        if field is None:  # a key the section does not have
            break
        model = field.annotation
    return path, field


def _problem(item: Mapping[str, Any], key: str, field: Any, value: Any) -> str:
    kind = item["type"]
    if kind == "missing":
        return f"config {key} is missing"
    if kind == "extra_forbidden":
        return not_read(key) or f"config {key} is not a known key"
    if kind == "value_error":  # our own validators say what is wrong themselves
        return f"config {key} {item['ctx']['error']}, got {value!r}"
    expected = [meta.text for meta in (field.metadata if field else []) if isinstance(meta, Expect)]
    if expected:
        return f"config {key} must be {expected[-1]}, got {value!r}"
    if field is not None and isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
        return f"config {key} must be a mapping of settings, got {value!r}"
    return f"config {key}: {item['msg'][:1].lower()}{item['msg'][1:]}, got {value!r}"


def _value_at(config: Any, path: list[str]) -> Any:
    for part in path:
        if not isinstance(config, Mapping):
            return None
        config = config.get(part)
    return config
