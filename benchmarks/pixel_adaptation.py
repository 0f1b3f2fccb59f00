"""Self-supervised pixel embedding (MAST) on a shifted domain: VOS J&F with the supervised, self-supervised and both.

Generates Shapes-VIS in the ``--domain`` look (``tubelets synth --domain``): an
unlabelled training set (only its videos are read) and a labelled test set
in DAVIS layout, plus the source-domain rendering of the same test scenes.
Then, through the command line's own entry point (in this process, one torch
thread, the pipeline in memory)::

    tubelets adapt pixel TRAIN/videos scratch.pt --set adapt_pixel.from_scratch=true   # (b) self-supervised only
    tubelets adapt pixel TRAIN/videos finetuned.pt                                     # (c) shipped, fine-tuned
    tubelets evaluate --task vos TEST OUT --config shapes-vis --set vos.checkpoint=X   # (a), (b), (c)

(``evaluate --task vos`` prompts each object with its first-appearance mask.) The three embeddings also
run without any learned head, as MAST runs at test time: the first-appearance masks carried from frame to
frame by the reconstruction's attention (:func:`tubelets.models.pixel_adaptation.propagate_labels`), scored
with the same J and F.
The table also gives each embedding's colour-reconstruction loss on the
*test* videos (the objective, held out; fixed samples), next to a
"no motion" row that copies each cell's colour from the same cell of the
memory frames.

    .venv/bin/python benchmarks/pixel_adaptation.py [--work /tmp/tubelets-pixel-adaptation] [--steps 400]

Checkpoints and runs already present under ``--work`` are read, not redone (delete the folder to start over).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch
from shapes_vis import PRESET

from tubelets.cli import main as tubelets
from tubelets.config import load_config
from tubelets.io.dataset import list_videos
from tubelets.io.davis import DavisDataset, object_ids_in
from tubelets.metrics.davis import evaluate_sequence, summarize
from tubelets.models import pixel_adaptation as pa
from tubelets.models.detection_data import AUGMENT_STREAM, sample_seed
from tubelets.models.ipdt import geometry
from tubelets.models.ipdt.checkpoint import load_tracking_models, read_tracker_checkpoint
from tubelets.synth import generate_dataset
from tubelets.synth.davis_layout import generate_davis
from tubelets.tables import read_table

SHIPPED = "builtin:tracker-vos-small"
PROPAGATION_LABELS = {"supervised": "(a) supervised embedding", "self-supervised": "(b) self-supervised embedding",
                      "both": "(c) both"}
HELD_OUT_SEED = 99  # the seed of the held-out reconstruction samples


def adapt(train: Path, out: Path, steps: int, overrides: list[str]) -> float:
    """``tubelets adapt pixel`` unless ``out`` holds its last step (an interrupted run resumes); its wall time
    in seconds (0 when read)."""
    if out.exists() and read_tracker_checkpoint(str(out))["step"] >= steps:
        return 0.0
    started = time.monotonic()
    sets = [flag for key in overrides for flag in ("--set", key)]
    code = tubelets(["adapt", "pixel", str(train / "videos"), str(out), "--steps", str(steps), "--threads", "1",
                     "--device", "cpu", "--no-progress", "--resume", *sets])
    assert code == 0, f"tubelets adapt pixel exited with {code}"
    return time.monotonic() - started


def evaluate_vos(data: Path, output: Path, run_id: str, checkpoint: str) -> float:
    """``tubelets evaluate --task vos`` with ``vos.checkpoint=checkpoint`` unless the run exists; its wall time."""
    if (output / run_id).exists():
        return 0.0
    started = time.monotonic()
    code = tubelets(["evaluate", "--task", "vos", str(data), str(output), "--config", PRESET, "--set",
                     f"vos.checkpoint={checkpoint}", "--set", "vos.device=cpu", "--run-id", run_id,
                     "--direct_running_mode=in_memory"])
    assert code == 0, f"tubelets evaluate exited with {code}"
    return time.monotonic() - started


def overall_row(output: Path, run_id: str) -> dict:
    rows = read_table(str(output), "metrics", run_id).to_pylist()
    return next(row for row in rows if row["scope"] == "overall")


@torch.no_grad()
def held_out_losses(videos: str, checkpoints: dict[str, str], samples: int, overrides: list[str]) -> dict[str, float]:
    """The reconstruction loss of each checkpoint's embedding on ``samples`` fixed samples of ``videos``.

    Also ``"no motion"``: an embedding that tells cells apart by position only (each cell copies the memory
    frames' mean colour at the same cell), the loss of a tracker that assumes nothing moves.
    """
    adapt_cfg = load_config(None, overrides)["adapt_pixel"]
    io_cfg = load_config()["io"]
    detector, _, _ = load_tracking_models(SHIPPED, device="cpu")  # every checkpoint here reads this detector
    bank = pa.ColourBank(detector, list_videos(videos), adapt_cfg["colour_dropout"], io_cfg,
                         adapt_cfg["frames_per_video"], progress=False)
    gaps, radius, delta = [int(g) for g in adapt_cfg["memory_gaps"]], int(adapt_cfg["radius"]), adapt_cfg["huber_delta"]
    drawn = [pa.draw_sample(bank, sample_seed(HELD_OUT_SEED, AUGMENT_STREAM, 0, slot), gaps) for slot in range(samples)]
    target, memory, memory_colours, target_colours = pa.sample_tensors(bank, drawn, torch.device("cpu"))

    def loss_of(target_embedding: torch.Tensor, memory_embedding: torch.Tensor) -> float:
        memory_embedding = memory_embedding.reshape(samples, -1, *memory_embedding.shape[1:])
        return float(pa.reconstruction_loss(target_embedding, memory_embedding, memory_colours, target_colours,
                                            radius, delta))

    losses = {}
    for name, url in checkpoints.items():
        embedding = load_tracking_models(url, device="cpu")[1].embedding
        losses[name] = loss_of(embedding(target), embedding(memory))
    # Position only: each cell attends equally to the same cell of every memory frame.
    losses["no motion"] = float(torch.nn.functional.smooth_l1_loss(memory_colours.mean(1), target_colours, beta=delta))
    return losses


@torch.no_grad()
def propagation_scores(data: Path, checkpoints: dict[str, str], memory: int, radius: int) -> dict[str, dict]:
    """J&F (``summarize``'s numbers) of MAST-style label propagation with each checkpoint's embedding, no head.

    Each object's first-appearance mask is its prompt, as ``evaluate --task vos`` gives it; frames are the
    DAVIS JPEGs in full colour (no dropout at test, as MAST); a pixel goes to the most probable label.
    """
    davis = DavisDataset(str(data))
    detector, _, _ = load_tracking_models(SHIPPED, device="cpu")
    embeddings = {name: load_tracking_models(url, device="cpu")[1].embedding for name, url in checkpoints.items()}
    results: dict[str, list] = {name: [] for name in checkpoints}
    for seq in davis.sequences():
        truth = davis.annotations(seq)
        ids = object_ids_in(truth)
        if not ids:
            continue
        frames = np.stack([frame for _, frame in davis.iter_frames(seq)])
        p2, scale = pa.encode_p2(detector, frames)
        masks = torch.as_tensor(np.stack([truth == object_id for object_id in ids], axis=1))  # [T, K, H, W]
        prompts = {}
        for k, object_id in enumerate(ids):
            first = int(np.flatnonzero(masks[:, k].flatten(1).any(1))[0])
            prompt = prompts.setdefault(first, torch.zeros(len(ids) + 1, *p2.shape[-2:]))
            prompt[k + 1] = geometry.masks_to_p2(masks[first, k][None], scale, tuple(p2.shape[-2:]))[0]
        for name, embedding in embeddings.items():
            labels = pa.propagate_labels(embedding(p2.float()), prompts, memory, radius)
            probabilities = geometry.p2_to_frame(labels.flatten(0, 1), scale, truth.shape[1:])
            best = probabilities.reshape(len(labels), len(ids) + 1, *truth.shape[1:]).argmax(1).numpy()
            predicted = np.concatenate([[0], ids])[best]
            results[name].append(evaluate_sequence(truth, predicted, ids, sequence=seq))
    return {name: summarize(found) for name, found in results.items()}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", default="/tmp/tubelets-pixel-adaptation")
    parser.add_argument("--domain", default="shifted", help="tubelets synth --domain of the training and test sets")
    parser.add_argument("--train-videos", type=int, default=20)
    parser.add_argument("--train-seed", type=int, default=7101)
    parser.add_argument("--test-videos", type=int, default=20)
    parser.add_argument("--test-seed", type=int, default=7102)
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--height", type=int, default=192)
    parser.add_argument("--steps", type=int, default=400, help="adapt_pixel.steps of each of the two runs")
    parser.add_argument("--held-out-samples", type=int, default=64, help="test samples of the reconstruction loss")
    parser.add_argument("--propagation-memory", type=int, default=3, help="label propagation: frames of memory")
    parser.add_argument("--propagation-radius", type=int, default=12, help="label propagation: window, P2 cells "
                        "(MAST tests with 12)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override of both adapt runs (and the held-out loss), e.g. adapt_pixel.radius=4")
    args = parser.parse_args(argv)
    work, size = Path(args.work), dict(width=args.width, height=args.height)
    train, test = work / f"train-{args.domain}-{args.train_seed}", work / f"davis-{args.domain}-{args.test_seed}"
    source_test = work / f"davis-source-{args.test_seed}"
    if not (train / "instances.json").exists():
        generate_dataset(str(train), videos=args.train_videos, seed=args.train_seed, domain=args.domain, **size)
    for folder, domain in ((test, args.domain), (source_test, "source")):
        if not (folder / "ImageSets").exists():
            generate_davis(str(folder), videos=args.test_videos, seed=args.test_seed, domain=domain, **size)
    scratch, finetuned, output = work / "scratch.pt", work / "finetuned.pt", work / "runs"
    trained = {
        "self-supervised": adapt(train, scratch, args.steps, [*args.overrides, "adapt_pixel.from_scratch=true"]),
        "both": adapt(train, finetuned, args.steps, args.overrides),
    }
    runs = [  # (label, run id, test data, checkpoint)
        (f"(a) supervised (`{SHIPPED}`), source-domain test", "supervised-source", source_test, SHIPPED),
        (f"(a) supervised (`{SHIPPED}`)", "supervised", test, SHIPPED),
        ("(b) self-supervised embedding alone (from scratch)", "self-supervised", test, str(scratch)),
        ("(c) both: supervised, fine-tuned self-supervised", "both", test, str(finetuned)),
    ]
    seconds = {run_id: evaluate_vos(data, output, run_id, checkpoint) for _, run_id, data, checkpoint in runs}
    checkpoints = {run_id: url for _, run_id, _, url in runs[1:]}
    held_out = held_out_losses(str(test / "videos"), checkpoints, args.held_out_samples, args.overrides)
    propagated = propagation_scores(test, checkpoints, args.propagation_memory, args.propagation_radius)
    print(f"\nVOS on Shapes-VIS `--domain {args.domain}` in DAVIS layout, --seed {args.test_seed} --videos "
          f"{args.test_videos} ({args.width}x{args.height}); embeddings trained on {args.train_videos} unlabelled "
          f"videos (seed {args.train_seed}), {args.steps} steps; J/F in %; reconstruction loss on "
          f"{args.held_out_samples} samples of the test videos (no motion: {held_out['no motion']:.5f})\n")
    print("| pixel level | J&F | J | J recall | J decay | F | F recall | reconstruction loss | training (s) "
          "| evaluate (s) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for label, run_id, _, _ in runs:
        row = overall_row(output, run_id)
        cells = [row[k] for k in ("JF_mean", "J_mean", "J_recall", "J_decay", "F_mean", "F_recall")]
        loss_cell = f"{held_out[run_id]:.5f}" if run_id in held_out else "-"
        train_cell = "-" if run_id not in trained else (f"{trained[run_id]:.0f}" if trained[run_id] else "(read)")
        eval_cell = f"{seconds[run_id]:.0f}" if seconds[run_id] else "(read)"
        print(f"| {label} | " + " | ".join(f"{100 * v:.1f}" for v in cells)
              + f" | {loss_cell} | {train_cell} | {eval_cell} |")
    for label, run_id, _, _ in runs[1:]:
        found = propagated[run_id]
        cells = [found[k] for k in ("J&F-Mean", "J-Mean", "J-Recall", "J-Decay", "F-Mean", "F-Recall")]
        print(f"| {PROPAGATION_LABELS[run_id]}, label propagation (no head) | "
              + " | ".join(f"{100 * v:.1f}" for v in cells) + " | - | - | - |")


if __name__ == "__main__":
    main()
