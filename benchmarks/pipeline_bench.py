"""Pipeline overhead against bare loops over the same frames, in one run.

1. decode: bare ``ffmpeg -> rawvideo`` pipe, ``tubelets.io.video.iter_frames``,
   and a Beam pipeline that only decodes (MatchInputs -> DecodeVideo -> count).
2. proposals: a bare torch loop over the detector at the pipeline's batch size,
   and the same frames through ``RunInference`` with our model handler.
3. end to end: ``tubelets evaluate`` frames/s on a Shapes-VIS set, and with
   ``--detect-every N`` also with the detector on every N-th frame only
   (``proposals.detect_every``), its ratio against the run with every frame.

Usage: python benchmarks/pipeline_bench.py [--videos 20] [--seed 1234] [--work /tmp/tubelets-bench] [--detect-every 3]
Prints one table; ratios are pipeline time / bare time (1.00 = no overhead).
"""

from __future__ import annotations

import argparse
import subprocess
import time

import apache_beam as beam
import numpy as np
import torch
from apache_beam.ml.inference.base import KeyedModelHandler, RunInference
from apache_beam.options.pipeline_options import PipelineOptions

from tubelets.config import load_config
from tubelets.io.dataset import list_videos
from tubelets.io.ffmpeg_binary import ffmpeg_binary
from tubelets.io.video import iter_frames, probe
from tubelets.models.loading import load_detector
from tubelets.pipelines import evaluate
from tubelets.pipelines.segment import detector_handler
from tubelets.synth import generate_dataset
from tubelets.transforms.decode import DecodeVideo
from tubelets.transforms.inputs import MatchInputs

IN_MEMORY = ["--runner=DirectRunner", "--direct_running_mode=in_memory"]


def timed(fn) -> tuple[float, object]:
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def bare_ffmpeg(urls: list[str], sizes: dict[str, tuple[int, int]]) -> int:
    """Frames decoded by ffmpeg alone (sizes probed beforehand, outside the timing)."""
    frames = 0
    for url in urls:
        width, height = sizes[url]
        raw = subprocess.run([ffmpeg_binary(), "-v", "error", "-i", url, "-f", "rawvideo", "-pix_fmt", "rgb24", "-"],
                             check=True, capture_output=True).stdout
        frames += len(raw) // (width * height * 3)
    return frames


def library_decode(urls: list[str]) -> int:
    return sum(1 for url in urls for _ in iter_frames(url))


def beam_decode(dataset: str) -> None:
    with beam.Pipeline(options=PipelineOptions(IN_MEMORY)) as p:
        _ = (p | MatchInputs(dataset) | beam.ParDo(DecodeVideo()) | beam.combiners.Count.Globally())


def bare_proposals(frames: list[np.ndarray], config: dict) -> None:
    if config["proposals"]["torch_threads"]:
        torch.set_num_threads(config["proposals"]["torch_threads"])  # as the model handler does
    model, _ = load_detector(config)
    batch = config["proposals"]["batch_size"]
    with torch.inference_mode():
        for start in range(0, len(frames), batch):
            model([torch.from_numpy(f).permute(2, 0, 1).float().div(255) for f in frames[start:start + batch]])


def beam_proposals(frames: list[np.ndarray], config: dict) -> None:
    keyed = [((0, i), f) for i, f in enumerate(frames)]
    with beam.Pipeline(options=PipelineOptions(IN_MEMORY)) as p:
        _ = (p | beam.Create(keyed, reshuffle=False) | RunInference(KeyedModelHandler(detector_handler(config)))
             | beam.combiners.Count.Globally())


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--work", default="/tmp/tubelets-bench")
    parser.add_argument("--config", default=None)
    parser.add_argument("--stages", default="decode,proposals,evaluate", help="comma-separated subset to run")
    parser.add_argument("--detect-every", type=int, default=1,
                        help="also time evaluate with proposals.detect_every=N (N > 1)")
    args = parser.parse_args(argv)
    dataset = f"{args.work}/shapes-{args.seed}-{args.videos}"
    generate_dataset(dataset, videos=args.videos, seed=args.seed)
    urls = list_videos(dataset)
    config = load_config(args.config, ["detector.device=cpu"])

    stages = set(args.stages.split(","))
    rows = decode_rows(urls, dataset) if "decode" in stages else []
    frames = [f for url in urls for _, f in iter_frames(url)]
    if "proposals" in stages:
        rows += proposal_rows(frames, config)
    if "evaluate" in stages:
        rows += evaluate_rows(dataset, args.work, len(frames), args.config, args.detect_every)
    print_rows(rows)


def evaluate_rows(dataset: str, work: str, count: int, config_name: str | None, detect_every: int) -> list[tuple]:
    """``tubelets evaluate`` end to end; with ``detect_every`` > 1 also with the detector on every N-th frame."""
    extra = ["--config", config_name] if config_name else []

    def seconds(every: int) -> float:
        flags = ["--direct_num_workers=2", "--set", f"proposals.detect_every={every}", *extra]
        return timed(lambda: evaluate.run([dataset, f"{work}/out", *flags]))[0]

    t_every = seconds(1)
    rows = [("evaluate end to end (2 workers)", count, t_every, 1.0)]
    if detect_every > 1:
        t_sparse = seconds(detect_every)
        rows.append((f"evaluate, proposals.detect_every={detect_every}", count, t_sparse, t_sparse / t_every))
    return rows


def decode_rows(urls: list[str], dataset: str) -> list[tuple]:
    sizes = {url: (probe(url).width, probe(url).height) for url in urls}
    t_ffmpeg, n = timed(lambda: bare_ffmpeg(urls, sizes))
    t_lib, _ = timed(lambda: library_decode(urls))
    t_beam, _ = timed(lambda: beam_decode(dataset))
    return [("decode: bare ffmpeg pipe", n, t_ffmpeg, 1.0), ("decode: iter_frames", n, t_lib, t_lib / t_ffmpeg),
            ("decode: Beam MatchInputs+DecodeVideo", n, t_beam, t_beam / t_ffmpeg)]


def proposal_rows(frames: list[np.ndarray], config: dict) -> list[tuple]:
    t_torch, _ = timed(lambda: bare_proposals(frames, config))
    t_ri, _ = timed(lambda: beam_proposals(frames, config))
    return [(f"proposals: bare torch loop (batch {config['proposals']['batch_size']})", len(frames), t_torch, 1.0),
            ("proposals: Beam RunInference", len(frames), t_ri, t_ri / t_torch)]


def print_rows(rows: list[tuple]) -> None:
    print(f"\n{'stage':48} {'frames':>7} {'seconds':>8} {'frames/s':>9} {'ratio':>6}")
    for name, count, seconds, ratio in rows:
        print(f"{name:48} {count:7d} {seconds:8.2f} {count / seconds:9.1f} {ratio:6.2f}")


if __name__ == "__main__":
    main()
