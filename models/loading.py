"""Build the configured detector and load its checkpoint, failing early and clearly.

:func:`load_detector` is what a pipeline calls at construction, before any
video is read: a missing, corrupt or mismatched checkpoint raises
``CheckpointError`` naming the file and what does not match.

Three kinds of checkpoint load:

* ours (:mod:`tubelets.models.checkpoints`): preset, class count and category
  names must match the config;
* a plain torchvision state dict, e.g. ``maskrcnn_resnet50_fpn_coco-*.pth``
  (91 COCO classes) into the ``r50-fpn`` preset. With
  ``detector.category_map: {coco_class_index: dataset_category_id}`` the box
  and mask predictors are *sliced* to the data set's classes: row ``id`` of the
  new predictor is the checkpoint's row ``coco_class_index``. Slicing (rather
  than relabelling outputs) drops unmapped COCO classes before score
  thresholding and NMS, so they neither crowd the per-frame detection budget
  nor suppress mapped ones, and the model's labels are data set ids like
  every other checkpoint's. A data set id no COCO class maps to gets a
  never-firing row (zero weights, classifier bias ``UNMAPPED_LOGIT``);
* a torchvision reference-training checkpoint (``{"model": state_dict, ...}``),
  treated as the plain state dict under ``model``.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Any, Mapping

import torch
from torchvision.models.detection import MaskRCNN

from tubelets.errors import CheckpointError, ConfigError
from tubelets.models.checkpoints import FORMAT, check_weights, read_checkpoint, weights_id
from tubelets.models.detector import build_detector

UNMAPPED_LOGIT = -30.0
SHOWN_MISMATCHES = 5
# (parameter, rows per class) of the class-specific predictor layers.
PREDICTOR_ROWS = {
    "roi_heads.box_predictor.cls_score": 1,
    "roi_heads.box_predictor.bbox_pred": 4,
    "roi_heads.mask_predictor.mask_fcn_logits": 1,
}
# torchvision renamed these layers in 0.8; old checkpoints (the COCO ones) carry the old names.
_LEGACY_KEYS = [
    (re.compile(r"^rpn\.head\.conv\.(weight|bias)$"), lambda m: f"rpn.head.conv.0.0.{m[1]}"),
    (
        re.compile(r"^roi_heads\.mask_head\.mask_fcn(\d+)\.(weight|bias)$"),
        lambda m: f"roi_heads.mask_head.{int(m[1]) - 1}.0.{m[2]}",
    ),
]


@dataclasses.dataclass(frozen=True)
class CheckpointInfo:
    """What was loaded: provenance for output metadata and model cards.

    ``source`` is ``"tubelets"``, ``"torchvision"`` or ``"untrained"`` (no
    checkpoint configured). ``categories`` are the data set's ``{"id", "name"}``
    records; a model label is such an id.
    """

    url: str | None
    checkpoint_id: str
    source: str
    preset: str
    num_classes: int
    categories: list[dict]
    step: int | None = None


def resolve_device(device: str = "auto") -> torch.device:
    """``"auto"``: the GPU when there is one, else the CPU; anything else as ``torch.device``."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def check_devices(config: Mapping[str, Any]) -> None:
    """Every device key the run uses names a device torch sees here; else a one-line ``ConfigError``.

    A ``vis`` run uses ``detector.device`` and its tracker's ``tracker.<name>.device`` (when that tracker has one);
    a ``vos`` or ``point`` run uses ``vos.device`` (its detector comes with the tracker checkpoint). Checked before
    the pipeline starts: a missing GPU otherwise fails inside a Beam worker, once per video.
    """
    if config["run"]["task"] == "vis":
        name = config["tracker"]["name"]
        tracker = config["tracker"].get(name)
        keys = [("detector.device", config["detector"].get("device"))]
        if isinstance(tracker, Mapping) and "device" in tracker:
            keys.append((f"tracker.{name}.device", tracker["device"]))
    else:
        keys = [("vos.device", config["vos"].get("device"))]
    for key, device in keys:
        missing = _missing_device(device)
        if missing:
            raise ConfigError(f"config {key} is {device!r}, but {missing}: set {key} to auto (the GPU when there is "
                              f"one) or cpu")


def _missing_device(device: Any) -> str | None:
    """Why ``device`` is not on this machine, or None when it is (``auto`` and the CPU always are)."""
    if not isinstance(device, str) or not device.startswith("cuda"):
        return None
    if not torch.cuda.is_available():
        return "torch sees no CUDA GPU on this machine"
    index, count = torch.device(device).index, torch.cuda.device_count()
    if index is not None and index >= count:
        return f"torch sees {count} CUDA GPU(s) here (cuda:0 to cuda:{count - 1})"
    return None


def load_detector(cfg: Mapping[str, Any]) -> tuple[MaskRCNN, CheckpointInfo]:
    """The detector of ``cfg["detector"]`` with its checkpoint loaded, in eval mode on ``detector.device``."""
    detector_cfg = cfg["detector"]
    model = build_detector(detector_cfg)
    url = detector_cfg.get("checkpoint")
    if url:
        info = apply_checkpoint(model, read_checkpoint(url), url, detector_cfg)
    else:
        num_classes = int(detector_cfg["num_classes"])
        categories = configured_categories(detector_cfg) or generic_categories(num_classes)
        info = CheckpointInfo(
            url=None,
            checkpoint_id="untrained",
            source="untrained",
            preset=detector_cfg["preset"],
            num_classes=num_classes,
            categories=categories,
        )
    return model.eval().to(resolve_device(detector_cfg.get("device") or "auto")), info


def apply_checkpoint(model: MaskRCNN, checkpoint: dict, url: str, detector_cfg: Mapping) -> CheckpointInfo:
    """Load ``checkpoint`` (read from ``url``) into ``model`` built from ``detector_cfg``."""
    if checkpoint.get("format") == FORMAT:
        return _apply_own(model, checkpoint, url, detector_cfg)
    state = checkpoint["model"] if isinstance(checkpoint.get("model"), Mapping) else checkpoint
    if not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise CheckpointError(
            f"checkpoint {url!r} is neither a tubelets checkpoint (format {FORMAT!r}) nor a torchvision state dict"
        )
    return _apply_torchvision(model, dict(state), url, detector_cfg)


def _apply_own(model: MaskRCNN, checkpoint: dict, url: str, detector_cfg: Mapping) -> CheckpointInfo:
    preset, num_classes = detector_cfg["preset"], int(detector_cfg["num_classes"])
    if checkpoint["preset"] != preset:
        raise CheckpointError(
            f"checkpoint {url!r} is for detector preset {checkpoint['preset']!r}, the config asks for {preset!r}"
        )
    if int(checkpoint["num_classes"]) != num_classes:
        raise CheckpointError(
            f"checkpoint {url!r} has {checkpoint['num_classes']} classes (incl. background), "
            f"the config detector.num_classes is {num_classes}"
        )
    names = [c["name"] for c in checkpoint["categories"]]
    wanted = configured_categories(detector_cfg)
    if wanted and [c["name"] for c in wanted] != names:
        raise CheckpointError(
            f"checkpoint {url!r} has categories {names}, "
            f"the config detector.categories are {[c['name'] for c in wanted]}"
        )
    check_weights(checkpoint, url, "detector")
    load_matching(model, checkpoint["model"], url)
    return CheckpointInfo(
        url, checkpoint["checkpoint_id"], "tubelets", preset, num_classes, checkpoint["categories"], checkpoint["step"]
    )


def _apply_torchvision(model: MaskRCNN, state: dict, url: str, detector_cfg: Mapping) -> CheckpointInfo:
    state = upgrade_legacy_keys(state)
    num_classes = int(detector_cfg["num_classes"])
    category_map = detector_cfg.get("category_map")
    if category_map:
        state = slice_predictors(state, parse_category_map(category_map, num_classes), num_classes, url)
    classes = state.get("roi_heads.box_predictor.cls_score.weight", torch.empty(num_classes)).shape[0]
    if classes != num_classes:
        raise CheckpointError(
            f"checkpoint {url!r} has {classes} classes (incl. background), detector.num_classes is {num_classes}: "
            "set detector.num_classes to match, or detector.category_map to pick the data set's classes"
        )
    load_matching(model, state, url)
    categories = configured_categories(detector_cfg) or generic_categories(num_classes)
    return CheckpointInfo(url, weights_id(state), "torchvision", detector_cfg["preset"], num_classes, categories)


def load_matching(model: torch.nn.Module, state: Mapping[str, torch.Tensor], url: str) -> None:
    """``model.load_state_dict(state)`` after checking every name and shape; mismatches raise ``CheckpointError``."""
    expected = model.state_dict()
    state = {k: v for k, v in state.items() if k in expected or not k.endswith("num_batches_tracked")}
    problems = describe_mismatch(expected, state)
    if problems:
        raise CheckpointError(f"checkpoint {url!r} does not match the model: {problems}")
    model.load_state_dict({k: v.to(expected[k].dtype) for k, v in state.items()})


def describe_mismatch(expected: Mapping[str, torch.Tensor], found: Mapping[str, torch.Tensor]) -> str:
    """Missing keys, unexpected keys and shape mismatches (a few of each, with counts); "" when none."""
    missing = [k for k in expected if k not in found]
    unexpected = [k for k in found if k not in expected]
    shapes = [
        f"{k}: checkpoint {list(found[k].shape)} vs model {list(expected[k].shape)}"
        for k in expected
        if k in found and found[k].shape != expected[k].shape
    ]
    parts = []
    for label, items in (("missing keys", missing), ("unexpected keys", unexpected), ("shape mismatches", shapes)):
        if items:
            more = f" ... ({len(items)} in all)" if len(items) > SHOWN_MISMATCHES else ""
            parts.append(f"{label} " + "; ".join(items[:SHOWN_MISMATCHES]) + more)
    return "; ".join(parts)


def upgrade_legacy_keys(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename pre-0.8 torchvision keys (``rpn.head.conv.weight``, ``mask_head.mask_fcn1``) to today's."""
    upgraded = {}
    for key, tensor in state.items():
        for pattern, rename in _LEGACY_KEYS:
            match = pattern.match(key)
            if match:
                key = rename(match)
        upgraded[key] = tensor
    return upgraded


def parse_category_map(category_map: Mapping, num_classes: int) -> dict[int, int]:
    """``{checkpoint_class_index: dataset_category_id}`` as ints, checked one-to-one and in range."""
    parsed = {int(k): int(v) for k, v in category_map.items()}
    bad = {k: v for k, v in parsed.items() if k < 1 or not 1 <= v < num_classes}
    if bad:
        raise ConfigError(
            f"detector.category_map entries {bad} out of range: keys are checkpoint class indices >= 1, "
            f"values data set category ids in 1..{num_classes - 1}"
        )
    if len(set(parsed.values())) != len(parsed):
        raise ConfigError(f"detector.category_map must map one checkpoint class to each data set id, got {parsed}")
    return parsed


def slice_predictors(state: dict, category_map: dict[int, int], num_classes: int, url: str) -> dict:
    """``state`` with the class-specific predictor rows picked (and reordered) by ``category_map``."""
    sliced = dict(state)
    for layer, rows in PREDICTOR_ROWS.items():
        for kind in ("weight", "bias"):
            key = f"{layer}.{kind}"
            if key not in state:
                raise CheckpointError(f"checkpoint {url!r} has no {key!r} to apply detector.category_map to")
            sliced[key] = _pick_rows(state[key], rows, category_map, num_classes, key, url)
    return sliced


def _pick_rows(tensor: torch.Tensor, rows: int, category_map: dict, num_classes: int, key: str, url: str):
    source_classes = tensor.shape[0] // rows
    too_big = [k for k in category_map if k >= source_classes]
    if too_big:
        raise CheckpointError(f"checkpoint {url!r} has {source_classes} classes; detector.category_map uses {too_big}")
    grouped = tensor.reshape(source_classes, rows, *tensor.shape[1:])
    picked = torch.zeros((num_classes, rows, *tensor.shape[1:]), dtype=tensor.dtype)
    if key == "roi_heads.box_predictor.cls_score.bias":
        picked.fill_(UNMAPPED_LOGIT)  # a data set class no checkpoint class maps to never wins
    picked[0] = grouped[0]  # the background
    for source, target in category_map.items():
        picked[target] = grouped[source]
    return picked.reshape(num_classes * rows, *tensor.shape[1:])


def configured_categories(detector_cfg: Mapping) -> list[dict] | None:
    """``detector.categories`` (names in id order, id = position + 1) as records, or None when unset."""
    names = detector_cfg.get("categories")
    if not names:
        return None
    num_classes = int(detector_cfg["num_classes"])
    if len(names) != num_classes - 1:
        raise ConfigError(f"detector.categories names {len(names)} classes, detector.num_classes {num_classes} - 1")
    return [{"id": index, "name": str(name)} for index, name in enumerate(names, start=1)]


def generic_categories(num_classes: int) -> list[dict]:
    """Placeholder names ``class_1`` ... when neither the checkpoint nor the config names the classes."""
    return [{"id": index, "name": f"class_{index}"} for index in range(1, num_classes)]
