"""How well do a detector's FPN features tell two domains apart? A probe for domain adaptation.

For each detector checkpoint, the FPN levels P2-P5 of a few frames of every video of two labelled
sets (say the source and the shifted test sets of ``benchmarks/adaptation.py``) are computed once,
frozen; a fresh domain discriminator (the DANN one, :class:`~tubelets.models.domain_adaptation.DomainDiscriminator`)
trains on the first half of each set's frames and is scored on the second half: its per-position
accuracy (0.5: the domains look alike to it). For an ``adapt detector`` checkpoint, the run's own
discriminator is scored on the same held-out frames too::

    .venv/bin/python benchmarks/investigations/domain_probe.py SOURCE_SET TARGET_SET CHECKPOINT [CHECKPOINT ...]

About 20 s a checkpoint on one core for two 20-video sets at 256x192 (2 frames a video).
"""

from __future__ import annotations

import argparse

import numpy as np
import torch

from tubelets.config import load_config
from tubelets.io.dataset import YouTubeVISDataset
from tubelets.models.checkpoints import read_checkpoint
from tubelets.models.domain_adaptation import DomainDiscriminator, domain_loss
from tubelets.models.inference import fpn_features
from tubelets.models.loading import load_detector

LEVELS = ["0", "1", "2", "3"]


def sample_frames(url: str, per_video: int) -> list[torch.Tensor]:
    """``per_video`` evenly spread frames of every video, ``float32 [3, H, W]`` in ``[0, 1]``."""
    data = YouTubeVISDataset(url)
    frames = []
    for video in data.videos:
        for t in np.linspace(0, video.length - 1, per_video).round().astype(int):
            frame = np.array(data.read_frame(video.id, int(t)))
            frames.append(torch.from_numpy(frame).permute(2, 0, 1).float().div_(255.0))
    return frames


def stacked(features: list[dict], levels: list[str]) -> dict[str, torch.Tensor]:
    return {level: torch.cat([f[level] for f in features]) for level in levels}


def probe(checkpoint: str, source: list[torch.Tensor], target: list[torch.Tensor], steps: int, seed: int) -> str:
    """One line: the fresh discriminator's held-out accuracy (and the run's own, for an adapted checkpoint)."""
    model, _ = load_detector(load_config(None, [f"detector.checkpoint={checkpoint}", "detector.device=cpu"]))
    model.train()  # the transform as the adaptation runs it; no layer here behaves otherwise in eval
    source_features = [fpn_features(model, [image])[0] for image in source]
    target_features = [fpn_features(model, [image])[0] for image in target]
    half_source, half_target = len(source) // 2, len(target) // 2
    held_out = (stacked(source_features[half_source:], LEVELS), stacked(target_features[half_target:], LEVELS))
    own = ""
    stored = read_checkpoint(checkpoint)
    if stored.get("discriminator") is not None:
        weights = stored["discriminator"]
        discriminator = DomainDiscriminator(model.backbone.out_channels, weights["layers.0.weight"].shape[0])
        discriminator.load_state_dict(weights)
        with torch.no_grad():
            own = f"; the run's own discriminator: {domain_loss(discriminator, *held_out, LEVELS, 1.0)[1]:.3f}"
    torch.manual_seed(seed)
    discriminator = DomainDiscriminator(model.backbone.out_channels, 64)
    optimizer = torch.optim.Adam(discriminator.parameters(), lr=1e-3)
    rng = np.random.default_rng(seed)
    for _ in range(steps):
        pick_source, pick_target = rng.integers(0, half_source, 4), rng.integers(0, half_target, 4)
        loss, _ = domain_loss(discriminator, stacked([source_features[k] for k in pick_source], LEVELS),
                              stacked([target_features[k] for k in pick_target], LEVELS), LEVELS, 1.0)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    with torch.no_grad():
        loss, accuracy = domain_loss(discriminator, *held_out, LEVELS, 1.0)
    return f"{checkpoint}: a fresh discriminator's held-out accuracy {accuracy:.3f} (loss {loss.item():.3f}){own}"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("source", help="a labelled set of one domain (its frames only are read)")
    parser.add_argument("target", help="a labelled set of the other domain")
    parser.add_argument("checkpoints", nargs="+", help="detector checkpoints (fsspec URL or builtin:NAME)")
    parser.add_argument("--frames-per-video", type=int, default=2)
    parser.add_argument("--steps", type=int, default=150, help="the fresh discriminator's training steps")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    source, target = (sample_frames(url, args.frames_per_video) for url in (args.source, args.target))
    for checkpoint in args.checkpoints:
        print(probe(checkpoint, source, target, args.steps, args.seed), flush=True)


if __name__ == "__main__":
    main()
