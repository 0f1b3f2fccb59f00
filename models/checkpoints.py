"""Checkpoint files: the detector's format, reading from any fsspec URL, checks every kind shares, atomic writing.

Our checkpoint is a ``torch.save``d dict (readable with ``weights_only=True``)::

    format         "tubelets.detector/1"
    model          state dict; floating tensors float32, or float16 when saved with half=True
    preset         detector preset name ("small", "r50-fpn")
    num_classes    classes including the background
    categories     [{"id": int, "name": str}, ...], the data set's; model label == id
    config         the full run config that trained it (plain YAML-able values)
    step           optimiser steps taken
    optimizer      optimizer.state_dict() for resuming, or None (shipped checkpoints drop it)
    checkpoint_id  first 16 hex digits of the sha256 of the stored weights (see weights_id)

A plain torchvision state dict (``maskrcnn_resnet50_fpn_coco-*.pth``) and a
torchvision reference-training checkpoint (``{"model": state_dict, ...}``) are
read too; :mod:`tubelets.models.loading` decides how to apply them.
``builtin:NAME`` names ``checkpoints/NAME.pt`` shipped inside this package.

The tracker's and the scorer's checkpoints (:mod:`tubelets.models.ipdt.checkpoint`,
:mod:`tubelets.models.tubelet_scoring`) are dicts of the same kind, with a
``format``, ``model`` weights and their ``checkpoint_id``, read with
:func:`read_own_checkpoint`; each belongs to the detector it was trained on
(:func:`check_same_detector`).
"""

from __future__ import annotations

import hashlib
import importlib.resources
import io
import posixpath
import uuid
from typing import Any, Mapping, Optional, Sequence

import fsspec
import torch

from tubelets.errors import CheckpointError

FORMAT = "tubelets.detector/1"
BUILTIN_PREFIX = "builtin:"
ID_LENGTH = 16


def builtin_checkpoints() -> list[str]:
    """Names usable as ``builtin:NAME`` (the ``.pt`` files in ``tubelets.models/checkpoints``)."""
    folder = importlib.resources.files("tubelets.models").joinpath("checkpoints")
    if not folder.is_dir():
        return []
    return sorted(p.name[: -len(".pt")] for p in folder.iterdir() if p.name.endswith(".pt"))


def resolve_url(url: str) -> str:
    """``builtin:NAME`` as the path of the shipped file; any other URL unchanged."""
    if not url.startswith(BUILTIN_PREFIX):
        return url
    name = url[len(BUILTIN_PREFIX) :]
    path = importlib.resources.files("tubelets.models").joinpath("checkpoints", f"{name}.pt")
    if not path.is_file():
        raise CheckpointError(f"checkpoint {url!r} not found: built-in checkpoints are {builtin_checkpoints()}")
    return str(path)


def read_checkpoint(url: str) -> dict:
    """The checkpoint at ``url`` (fsspec URL or ``builtin:NAME``) as a dict, loaded on the CPU.

    Raises ``CheckpointError`` naming the file when it is missing, not a torch
    file, truncated, or holds something other than a dict.
    """
    data = _read_bytes(url)
    try:
        loaded = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises RuntimeError, UnpicklingError, EOFError ... for bad bytes
        reason = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise CheckpointError(
            f"checkpoint {url!r} is not a readable torch file ({len(data)} bytes; corrupt or truncated?): {reason}"
        ) from None
    if not isinstance(loaded, Mapping):
        raise CheckpointError(f"checkpoint {url!r} holds a {type(loaded).__name__}, expected a dict")
    return dict(loaded)


def read_own_checkpoint(url: str, expected_format: str, kind: str, keys: Sequence[str] = ()) -> dict:
    """The checkpoint dict at ``url``, checked to be a tubelets ``kind`` checkpoint with intact weights.

    ``CheckpointError`` naming the file when it is missing or corrupt (:func:`read_checkpoint`), of another
    format than ``expected_format``, lacks ``model``, ``checkpoint_id`` or one of ``keys``, or its weights are
    not those its ``checkpoint_id`` names (:func:`check_weights`).
    """
    checkpoint = read_checkpoint(url)
    found = checkpoint.get("format")
    if found != expected_format:
        raise CheckpointError(f"checkpoint {url!r} is not a tubelets {kind} checkpoint (format {found!r}, "
                              f"expected {expected_format!r}, made by `tubelets train {kind}`)")
    missing = [key for key in ("model", "checkpoint_id", *keys) if key not in checkpoint]
    if missing:
        raise CheckpointError(f"{kind} checkpoint {url!r} lacks {missing}")
    check_weights(checkpoint, url, kind)
    return checkpoint


def check_weights(checkpoint: Mapping[str, Any], url: str, kind: str) -> None:
    """``CheckpointError`` unless the ``model`` weights are those the checkpoint's ``checkpoint_id`` names."""
    if weights_id(checkpoint["model"]) != checkpoint["checkpoint_id"]:
        raise CheckpointError(
            f"{kind} checkpoint {url!r}: weights do not match checkpoint_id {checkpoint['checkpoint_id']}"
        )


def check_same_detector(checkpoint: str, reads: str, trained_on: tuple[str, Optional[str]],
                        loaded: tuple[str, Optional[str]], fix: str) -> None:
    """``CheckpointError`` unless the detector ``loaded`` is the one a model was ``trained_on`` (both
    ``(checkpoint_id, url)``): its heads read that detector's ``reads`` (features, scores), which another's
    mean something else.

    ``checkpoint`` names the model's checkpoint in the message, ``fix`` says how to mend the mismatch.
    """
    if loaded[0] != trained_on[0]:
        raise CheckpointError(
            f"{checkpoint} was trained on the {reads} of detector checkpoint {trained_on[0]} ({trained_on[1]}), "
            f"but the detector loaded is {loaded[0]} ({loaded[1]}): {fix}"
        )


def _read_bytes(url: str) -> bytes:
    path = resolve_url(url)
    try:
        with fsspec.open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        raise CheckpointError(f"checkpoint {url!r} not found") from None
    except IsADirectoryError:
        raise CheckpointError(f"checkpoint {url!r} is a folder, expected a .pt file") from None


def weights_id(state_dict: Mapping[str, torch.Tensor]) -> str:
    """A digest of a state dict (names, dtypes, shapes and bytes, in name order)."""
    digest = hashlib.sha256()
    for name in sorted(state_dict):
        tensor = state_dict[name].detach().cpu().contiguous()
        digest.update(f"{name}|{tensor.dtype}|{tuple(tensor.shape)}|".encode())
        digest.update(tensor.reshape(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()[:ID_LENGTH]


def stored_state_dict(model: torch.nn.Module, half: bool = False) -> dict[str, torch.Tensor]:
    """``model``'s state dict on the CPU; floating tensors as float16 when ``half``."""
    state = {}
    for name, tensor in model.state_dict().items():
        tensor = tensor.detach().cpu()
        state[name] = tensor.half() if half and tensor.is_floating_point() else tensor.clone()
    return state


def make_checkpoint(
    model: torch.nn.Module,
    *,
    preset: str,
    categories: list[dict],
    config: Mapping[str, Any],
    step: int = 0,
    optimizer: torch.optim.Optimizer | None = None,
    half: bool = False,
) -> dict:
    """The checkpoint dict of ``model`` (see the module docstring for the fields)."""
    state = stored_state_dict(model, half=half)
    return {
        "format": FORMAT,
        "model": state,
        "preset": preset,
        "num_classes": int(model.roi_heads.box_predictor.cls_score.out_features),
        "categories": [{"id": int(c["id"]), "name": str(c["name"])} for c in categories],
        "config": dict(config),
        "step": int(step),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "checkpoint_id": weights_id(state),
    }


def write_checkpoint(url: str, checkpoint: Mapping[str, Any]) -> None:
    """``torch.save`` ``checkpoint`` to ``url`` atomically: a temporary file next to it, then a move.

    A reader never sees a half-written file at ``url``; on file systems whose
    move is a copy (object stores), the copy itself is the single visible write.
    """
    fs, path = fsspec.core.url_to_fs(url)
    parent = posixpath.dirname(path)
    if parent:
        fs.makedirs(parent, exist_ok=True)
    temporary = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    buffer = io.BytesIO()
    torch.save(dict(checkpoint), buffer)
    try:
        with fs.open(temporary, "wb") as handle:
            handle.write(buffer.getvalue())
        fs.mv(temporary, path)
    finally:
        if fs.exists(temporary):
            fs.rm(temporary)


# What only a resumed training run reads: left out of a released checkpoint (a DANN run's domain discriminator).
TRAINING_ONLY = ("discriminator",)


def strip_for_release(checkpoint: Mapping[str, Any]) -> dict:
    """A copy of ``checkpoint`` for shipping: float16 weights, no optimizer or other training state, a fresh id."""
    state = {k: v.half() if v.is_floating_point() else v for k, v in checkpoint["model"].items()}
    kept = {key: value for key, value in checkpoint.items() if key not in TRAINING_ONLY}
    return {**kept, "model": state, "optimizer": None, "checkpoint_id": weights_id(state)}
