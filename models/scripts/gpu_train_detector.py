"""Train the `small` detector on one GPU machine within a short loan: data, training, AP and a checkpoint.

    python models/scripts/gpu_train_detector.py OUT_FOLDER [--budget-seconds 420] [--data-workers 16]
        [--train-videos 6000] [--init builtin:detector-small] [--eval-videos 20]

On a machine with one H100-class GPU and 16 CPU cores, without network, it

1. generates Shapes-VIS in ``--data-workers`` processes, one ``generate_dataset``
   call (a shard of ``--shard-videos`` videos, JPEG frames only) per seed: the
   held-out sets first (``1234`` default and ``1234`` ``--hard``, ``--eval-videos``
   each: the sets of models/checkpoints/detector-small.md), then the training
   shards, two in five ``--hard``, default shards on seeds 5000, 5001, ... and
   hard ones on 7000, 7001, ..., their frames 256x192, 320x240 or 192x144 in
   turn, so that textures, noise and blur come at several scales; together they
   vary appearance, lighting (flicker), noise, blur, object sizes and speeds and
   crowding as far as the generator does (compression stays its JPEG quality 95).
   The default 6000 videos (3600 default, 2400 hard: about 190,000 frames, of
   which ``--frame-stride 2`` trains on 95,000) took 650 core-seconds on this
   project's CPU, about 45 s on 16 such cores; shards not done by
   ``--max-generation-seconds`` are dropped;
2. evaluates the ``--init`` checkpoint's per-frame mask AP on the held-out sets
   while the training shards are generated (not with ``--init none``);
3. trains the `small` preset from ``--init`` (recipe ``configs/detector_small.yaml``
   with a GPU batch, see the flags) with bfloat16 autocast for ``--budget-seconds``,
   cut so that everything ends by ``--deadline-seconds`` after the start: data
   generation that took longer leaves less time to train; the learning rate
   decays over the time the run gets (:func:`tubelets.models.training_loop.learning_rate`);
4. evaluates the trained checkpoint on the held-out sets;

and writes ``OUT_FOLDER/detector.pt`` (released: float16 weights, no optimizer
state, like the shipped one), ``OUT_FOLDER/log.json`` (seeds, frames, steps,
seconds per phase, losses, AP before and after, device and versions; rewritten
after every phase; ``generate`` counts from the start, as ``generate_eval``
does, and overlaps ``evaluate_before``) and ``OUT_FOLDER/summary.md`` (a
paragraph for a model card).
The data (about 7 GB of JPEGs) go to ``--work`` (default: a temporary folder,
removed at the end).

What it imports beyond the GPU machine's python3 (torch, torchvision, numpy,
scipy, pillow, fsspec, pyyaml, tqdm): pycocotools (compiled, the cp312 abi3
manylinux wheel), pydantic with pydantic-core (compiled, cp312), annotated-types,
typing-inspection and typing-extensions (the config checks), and ffmpeg-python
with future (pure Python; ``tubelets.io`` imports them, though no video is
read or written here). ``make gpu-wheels`` downloads those wheels into
``.gpu-wheels/`` (about 4 MB). No Beam, duckdb or ffmpeg binary is used.
The device tool's command (carry ``.gpu-wheels``; ``timeout_s`` 600)::

    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --no-build-isolation
        --target /tmp/site .gpu-wheels/*.whl . && export PYTHONPATH=/tmp/site &&
        PYTHONUNBUFFERED=1 timeout 580 python3 models/scripts/gpu_train_detector.py $OUT/run --work /tmp/shapes

(one line; the ``.`` installs this checkout's ``tubelets`` into ``/tmp/site``;
``--work`` keeps the data on the machine, which is given back anyway, rather
than spend seconds deleting 190,000 files). The files come back from
``$OUT/run``. On a CPU it runs too, with tiny data and a tiny budget
(``tests/models/test_gpu_train_detector.py``).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import multiprocessing
import os
import platform
import shutil
import sys
import tempfile
import time
from typing import Any, Optional, Sequence

import torch
import torchvision

from tubelets.config import load_config
from tubelets.models.evaluate_detector import evaluate_detector
from tubelets.models.loading import load_detector, resolve_device
from tubelets.models.train_detector import train_detector
from tubelets.synth import generate_dataset

RECIPE = "detector_small"  # configs/detector_small.yaml: the shipped checkpoint's recipe
EVAL_SEED = 1234
DEFAULT_SEED_BASE, HARD_SEED_BASE = 5000, 7000
# Two shards in five are --hard: hard videos are longer and more crowded, so about half the frames are hard.
HARD_SHARDS = (1, 3)
FRAME_SIZES = ((256, 192), (320, 240), (256, 192), (192, 144))
# Time kept after training: the final evaluation is estimated as this many times the first one
# (the same frames on the same device; the first ran beside data generation, so this is generous) ...
EVALUATION_GROWTH = 1.25
# ... plus this for the checkpoint, the log and the exit; and with no first evaluation (--init none), this much.
FINISH_SECONDS, UNKNOWN_EVALUATION_SECONDS = 15.0, 60.0
LOG_POINTS = 60  # training-loss curve points kept in the log


@dataclasses.dataclass(frozen=True)
class Shard:
    """One ``generate_dataset`` call: ``videos`` Shapes-VIS videos of seed ``seed`` in folder ``name``."""

    name: str
    seed: int
    hard: bool
    videos: int
    width: int
    height: int


def parse_args(argv: Optional[Sequence[str]] = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", help="folder for detector.pt, log.json and summary.md")
    parser.add_argument("--budget-seconds", type=float, default=420.0, help="training time at most")
    parser.add_argument("--deadline-seconds", type=float, default=500.0,
                        help="everything (data, evaluations, training, files) ends this long after the start")
    parser.add_argument("--data-workers", type=int, default=16, help="processes generating the data")
    parser.add_argument("--max-generation-seconds", type=float, default=120.0,
                        help="training shards not generated by then are dropped")
    parser.add_argument("--train-videos", type=int, default=6000, help="training videos, default and --hard")
    parser.add_argument("--shard-videos", type=int, default=50, help="videos a seed (one generate_dataset call)")
    parser.add_argument("--eval-videos", type=int, default=20, help="videos of each held-out set")
    parser.add_argument("--frame-size", default=None, metavar="WxH",
                        help="every set at this size (default: training sizes in turn, held-out sets 256x192)")
    parser.add_argument("--init", default="builtin:detector-small", help="start weights, or none: from scratch")
    parser.add_argument("--batch-size", type=int, default=16, help="frames a step")
    parser.add_argument("--lr", type=float, default=None,
                        help="peak learning rate (default: 1e-3 from --init, 2e-3 from scratch: the CPU recipe's "
                        "5e-4 and 1e-3 at 4 frames a step, scaled by the square root of the batch)")
    parser.add_argument("--warmup-steps", type=int, default=100)
    parser.add_argument("--frame-stride", type=int, default=2, help="every n-th frame of a training video")
    parser.add_argument("--loader-workers", type=int, default=12, help="data loader processes while training")
    parser.add_argument("--seed", type=int, default=0, help="train_detector.seed")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda[:N]")
    parser.add_argument("--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--work", default=None, help="folder for the generated data (default: a temporary one)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override after the script's own, e.g. detector.min_size=48")
    return parser.parse_args(argv)


@dataclasses.dataclass
class Run:
    """What the phases share: the arguments, where the data go, the clock and the log being written."""

    args: argparse.Namespace
    work: str
    started: float
    log: dict[str, Any]

    @property
    def deadline(self) -> float:
        return self.started + self.args.deadline_seconds

    def phase_done(self, name: str, since: float, note: str = "") -> None:
        """Record phase ``name`` as the seconds since ``since``, rewrite the log and say so on stderr."""
        self.log["phases"][name] = round(time.monotonic() - since, 1)
        write_log(self.args.out, self.log)
        print(f"[{time.monotonic() - self.started:5.0f} s] {name}: {self.log['phases'][name]} s{note}",
              file=sys.stderr, flush=True)


def main(argv: Optional[Sequence[str]] = None) -> dict:
    """Run the whole script; returns the log it wrote."""
    started = time.monotonic()
    args = parse_args(argv)
    os.makedirs(args.out, exist_ok=True)
    run = Run(args, args.work or tempfile.mkdtemp(prefix="gpu-train-detector-"), started,
              {"argv": list(argv) if argv is not None else sys.argv[1:], "init": args.init, "phases": {}})
    try:
        # Forked first, before anything touches CUDA: the generating processes never use it, and start small.
        with multiprocessing.get_context("fork").Pool(args.data_workers) as pool:  # leaving it ends unfinished shards
            device = choose_device(args)
            run.log.update(environment(device))
            cfg = run_config(args)
            eval_sets, train_sets = generate_and_evaluate_before(run, pool, cfg, device)
        train_and_evaluate_after(run, cfg, device, eval_sets, train_sets)
    finally:
        if not args.work:
            shutil.rmtree(run.work, ignore_errors=True)
    with open(os.path.join(args.out, "summary.md"), "w", encoding="utf-8") as handle:
        handle.write(summary(run.log) + "\n")
    print(summary(run.log), file=sys.stderr)
    return run.log


def choose_device(args: argparse.Namespace) -> torch.device:
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # frames of one size: the fastest convolutions are found once
    return device


def generate_and_evaluate_before(run: Run, pool, cfg: dict, device: torch.device) -> tuple[list, list]:
    """Generate the held-out sets, then the training shards while the ``--init`` checkpoint is evaluated.

    Returns ``(eval_sets, train_sets)``, each ``[(shard, counts)]``; training shards not done by
    ``--max-generation-seconds`` are left out (and ended when the pool closes).
    """
    args, log = run.args, run.log
    eval_shards, train_shards = plan_shards(args)
    eval_jobs, train_jobs = submit(pool, eval_shards, run.work), submit(pool, train_shards, run.work)
    eval_sets = collect(eval_jobs, run.deadline)[0]
    run.phase_done("generate_eval", run.started)
    log["AP"] = {shard.name: {} for shard, _ in eval_sets}
    if args.init != "none":
        before = time.monotonic()
        for name, stats in evaluate_sets(cfg, args.init, eval_sets, run.work, device).items():
            log["AP"][name]["before"] = stats
        run.phase_done("evaluate_before", before, f"; AP {ap_line(log, 'before')}")
    train_sets, dropped = collect(train_jobs, run.started + args.max_generation_seconds)
    log["data"] = data_record(args, eval_sets, train_sets, dropped)
    run.phase_done("generate", run.started, f"; {len(train_sets)} training shards, {len(dropped)} dropped")
    if not train_sets:
        raise RuntimeError(f"no training shard was generated in {args.max_generation_seconds:.0f} s: "
                           "raise --max-generation-seconds or lower --shard-videos")
    return eval_sets, train_sets


def train_and_evaluate_after(run: Run, cfg: dict, device: torch.device, eval_sets: list, train_sets: list) -> None:
    """Train for the time left before the deadline (at most ``--budget-seconds``), then evaluate the checkpoint."""
    args, log = run.args, run.log
    evaluation = log["phases"].get("evaluate_before")
    reserve = FINISH_SECONDS + (UNKNOWN_EVALUATION_SECONDS if evaluation is None else EVALUATION_GROWTH * evaluation)
    granted = training_seconds(args.budget_seconds, time.monotonic(), run.deadline, reserve)
    checkpoint = os.path.join(args.out, "detector.pt")
    result = train_detector([f"{run.work}/{shard.name}" for shard, _ in train_sets], checkpoint, cfg,
                            device=str(device), progress=False, max_seconds=granted, mixed_precision=True,
                            cache_videos=0)
    log["training"] = training_record(args, cfg, result, granted, device)
    run.phase_done("train", time.monotonic() - result.wall_seconds,
                   f" of {granted:.0f} granted; {result.steps} steps, loss {result.loss:.3f}")
    after = time.monotonic()
    for name, stats in evaluate_sets(cfg, checkpoint, eval_sets, run.work, device).items():
        log["AP"][name]["after"] = stats
    log["checkpoint"] = {"file": "detector.pt", "checkpoint_id": result.checkpoint_id,
                         "bytes": os.path.getsize(checkpoint), "step": result.steps}
    run.phase_done("evaluate_after", after, f"; AP {ap_line(log, 'after')}")
    run.phase_done("total", run.started)


def ap_line(log: dict, when: str) -> str:
    """``name AP/AP50`` of each held-out set, e.g. ``eval-default 0.430/0.579``."""
    return ", ".join(f"{name} {sets[when]['AP']:.3f}/{sets[when]['AP50']:.3f}" for name, sets in log["AP"].items())


def plan_shards(args: argparse.Namespace) -> tuple[list[Shard], list[Shard]]:
    """The held-out shards (seed 1234, default and hard) and the training shards (see the module docstring)."""
    fixed = parse_size(args.frame_size) if args.frame_size else None
    eval_size = fixed or (256, 192)
    eval_shards = [Shard(f"eval-{'hard' if hard else 'default'}", EVAL_SEED, hard, args.eval_videos, *eval_size)
                   for hard in (False, True)]
    train_shards, counts = [], {False: 0, True: 0}
    for index in range(-(-args.train_videos // args.shard_videos)):
        hard = index % 5 in HARD_SHARDS
        seed = (HARD_SEED_BASE if hard else DEFAULT_SEED_BASE) + counts[hard]
        counts[hard] += 1
        videos = min(args.shard_videos, args.train_videos - index * args.shard_videos)
        width, height = fixed or FRAME_SIZES[index % len(FRAME_SIZES)]
        train_shards.append(Shard(f"train-{'hard' if hard else 'default'}-{seed}", seed, hard, videos, width, height))
    return eval_shards, train_shards


def parse_size(text: str) -> tuple[int, int]:
    width, _, height = text.lower().partition("x")
    return int(width), int(height)


def generate_shard(shard: Shard, work: str) -> dict:
    """Write ``shard`` under ``work`` (JPEG frames only); its frame and instance counts."""
    dataset = generate_dataset(f"{work}/{shard.name}", videos=shard.videos, seed=shard.seed, width=shard.width,
                               height=shard.height, hard=shard.hard, write_videos=False)
    return {"frames": sum(video["length"] for video in dataset["videos"]), "instances": len(dataset["annotations"])}


def submit(pool, shards: list[Shard], work: str) -> list:
    """``[(shard, pending result)]``, queued in order."""
    return [(shard, pool.apply_async(generate_shard, (shard, work))) for shard in shards]


def collect(jobs: list, until: float) -> tuple[list[tuple[Shard, dict]], list[Shard]]:
    """The shards done by ``until`` (a ``time.monotonic()`` reading) with their counts, and those that were not.

    A shard that failed raises its error here.
    """
    for _, job in jobs:
        job.wait(max(0.0, until - time.monotonic()))
    done = [(shard, job.get()) for shard, job in jobs if job.ready()]
    return done, [shard for shard, job in jobs if not job.ready()]


def run_config(args: argparse.Namespace) -> dict:
    """The recipe with the script's settings: a GPU batch, steps bounded by the time budget, released weights."""
    lr = args.lr if args.lr is not None else (1e-3 if args.init != "none" else 2e-3)
    overrides = [
        "detector.checkpoint=null", "train_detector.steps=100000000", f"train_detector.batch_size={args.batch_size}",
        f"train_detector.lr={lr}", f"train_detector.warmup_steps={args.warmup_steps}",
        f"train_detector.frame_stride={args.frame_stride}", f"train_detector.workers={args.loader_workers}",
        f"train_detector.seed={args.seed}", "train_detector.source=jpeg", "train_detector.release=true",
        "train_detector.checkpoint_every=1000",
        f"train_detector.init_from={'null' if args.init == 'none' else args.init}",
    ]
    return load_config(RECIPE, overrides + list(args.overrides))


def training_seconds(budget: float, now: float, deadline: float, reserve: float) -> float:
    """The time training gets: ``budget``, cut so that ``reserve`` seconds are left before ``deadline``."""
    return max(0.0, min(budget, deadline - now - reserve))


def evaluate_sets(cfg: dict, checkpoint: str, sets: list, work: str, device: torch.device) -> dict[str, dict]:
    """Per-frame mask AP of ``checkpoint`` on each held-out set (every frame, JPEG); the detector loads once."""
    model, info = load_detector({**cfg, "detector": {**cfg["detector"], "checkpoint": checkpoint,
                                                     "device": str(device)}})
    reports = {}
    for shard, _ in sets:
        report = evaluate_detector(model, f"{work}/{shard.name}", source="jpeg")
        reports[shard.name] = {
            **{key: round(report[key], 4) for key in ("AP", "AP50", "AP75", "APs", "APm", "AR100")},
            "per_category_AP": {name: round(ap, 4) for name, ap in report["per_category_AP"].items()},
            **{key: report[key] for key in ("frames", "instances")}, "checkpoint_id": info.checkpoint_id,
        }
    return reports


def data_record(args, eval_sets: list, train_sets: list, dropped: list[Shard]) -> dict:
    def described(shard: Shard, counts: dict) -> dict:
        return {**dataclasses.asdict(shard), **counts}

    return {
        "generator": "tubelets.synth.generate_dataset, JPEG frames only",
        "eval": [described(shard, counts) for shard, counts in eval_sets],
        "train": [described(shard, counts) for shard, counts in train_sets],
        "dropped_unfinished": [shard.name for shard in dropped],
        "train_videos": sum(shard.videos for shard, _ in train_sets),
        "train_frames_generated": sum(counts["frames"] for _, counts in train_sets),
        "frame_stride": args.frame_stride,
    }


def training_record(args, cfg: dict, result, granted: float, device: torch.device) -> dict:
    section = cfg["train_detector"]
    return {
        "budget_seconds": args.budget_seconds, "granted_seconds": round(granted, 1),
        "stopped_by_budget": result.stopped_by_budget, "steps": result.steps, "frames": result.frames,
        "batch_size": section["batch_size"], "lr": section["lr"], "warmup_steps": section["warmup_steps"],
        "schedule": "cosine over the granted time", "optimizer": section["optimizer"],
        "precision": "bfloat16 autocast" if device.type == "cuda" else "float32 (CPU)",
        "samples_per_second": round(result.steps * section["batch_size"] / max(result.wall_seconds, 1e-9), 1),
        "loss_last_50": round(result.loss, 4), "loss_curve": loss_curve(result.history),
    }


def loss_curve(history: list[dict], points: int = LOG_POINTS) -> list[list[float]]:
    """``[[steps done, mean loss since the last point, learning rate], ...]``: at most ``points`` of them."""
    size = max(1, -(-len(history) // points))
    curve = []
    for start in range(0, len(history), size):
        chunk = history[start:start + size]
        curve.append([start + len(chunk), round(sum(h["loss"] for h in chunk) / len(chunk), 4),
                      float(f"{chunk[-1]['lr']:.4g}")])
    return curve


def environment(device: torch.device) -> dict:
    return {
        "device": torch.cuda.get_device_name(device) if device.type == "cuda" else f"cpu ({platform.machine()})",
        "cpu_cores": os.cpu_count(), "torch": torch.__version__, "torchvision": torchvision.__version__,
        "python": platform.python_version(),
    }


def write_log(out: str, log: dict) -> None:
    """``out/log.json``, replaced whole (a reader never sees half of it)."""
    path = os.path.join(out, "log.json")
    with open(path + ".tmp", "w", encoding="utf-8") as handle:
        json.dump(log, handle, indent=1)
    os.replace(path + ".tmp", path)


def summary(log: dict) -> str:
    """One paragraph for a model card: what was trained on what, for how long, and the AP before and after."""
    data, training = log["data"], log["training"]
    hard = [s for s in data["train"] if s["hard"]]
    default = [s for s in data["train"] if not s["hard"]]
    start = "from scratch" if log["init"] == "none" else f"from `{log['init']}`"
    sizes = sorted({f"{s['width']}x{s['height']}" for s in data["train"]})
    ap_lines = []
    for name, stats in log["AP"].items():
        after = stats["after"]
        before = f"{stats['before']['AP']:.3f} -> " if "before" in stats else ""
        before50 = f"{stats['before']['AP50']:.3f} -> " if "before" in stats else ""
        ap_lines.append(f"{name} ({after['frames']} frames): AP {before}{after['AP']:.3f}, AP50 {before50}"
                        f"{after['AP50']:.3f}")
    return (
        f"`models/scripts/gpu_train_detector.py` trained the `small` preset {start} on {log['device']} "
        f"(torch {log['torch']}) for {training['steps']} steps of {training['batch_size']} frames in "
        f"{log['phases']['train']:.0f} s ({training['precision']}, AdamW, peak lr {training['lr']:g} after "
        f"{training['warmup_steps']} warm-up steps, cosine over the {training['granted_seconds']:.0f} s granted), "
        f"final training loss {training['loss_last_50']:.3f}, on {training['frames']} JPEG frames (1 in "
        f"{data['frame_stride']}) of {data['train_videos']} Shapes-VIS videos generated in "
        f"{log['phases']['generate']:.0f} s: {sum(s['videos'] for s in default)} default ({seed_range(default)}) "
        f"and {sum(s['videos'] for s in hard)} `--hard` ({seed_range(hard)}), frames "
        f"{', '.join(sizes)}. Per-frame mask AP on the "
        f"held-out JPEG sets (seed {EVAL_SEED}, {data['eval'][0]['videos']} videos each): {'; '.join(ap_lines)}. "
        f"Checkpoint `{log['checkpoint']['checkpoint_id']}` (float16, no optimizer state)."
    )


def seed_range(shards: list[dict]) -> str:
    seeds = sorted(s["seed"] for s in shards)
    return "no seed" if not seeds else f"seeds {seeds[0]}-{seeds[-1]}" if len(seeds) > 1 else f"seed {seeds[0]}"


if __name__ == "__main__":
    main()
