"""Time the YouTube-VIS evaluator on a large synthetic results file.

Builds (or reuses, from ``--workdir``) a ground truth of ``--videos`` videos and a
results file, then times ``tubelets.metrics.vis`` end to end (JSON included), its
per-video and accumulation stages, and the loop-based reference evaluator of the
tests (an official-code stand-in) on a subset, extrapolated to the whole set.

Generating masks is far slower than scoring them, so ``--unique-videos`` videos
are generated and copied under new video and annotation ids up to ``--videos``;
the evaluator caches nothing across videos, so the copies cost what new videos would.

    python benchmarks/score_vis.py --videos 2000 --frames 30 --height 180 --width 320
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import pathlib
import time

from tubelets.metrics.vis import accumulate, evaluate, score_files
from tubelets.metrics.vis_data import group_results, index_ground_truth
from tubelets.metrics.vis_match import match_video
from tubelets.synth.predictions import noisy_predictions, random_gt

REFERENCE = pathlib.Path(__file__).resolve().parents[1] / "tests/tubelets/metrics/reference_ytvoseval.py"


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=2000)
    parser.add_argument("--unique-videos", type=int, default=200)
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--tracks", type=int, default=5, help="ground-truth tracks per video")
    parser.add_argument("--height", type=int, default=180)
    parser.add_argument("--width", type=int, default=320)
    parser.add_argument("--categories", type=int, default=40)
    parser.add_argument("--false-positives", type=int, nargs=2, default=(11, 15), metavar=("MIN", "MAX"),
                        help="false positives per video (about 6 true-track predictions come on top)")
    parser.add_argument("--reference-videos", type=int, default=40, help="subset scored by the reference (0: skip)")
    parser.add_argument("--workdir", type=pathlib.Path, default=pathlib.Path("/tmp/tubelets-vis-bench"))
    parser.add_argument("--seed", type=int, default=0)
    return parser.parse_args(argv)


def build_files(args) -> tuple[pathlib.Path, pathlib.Path]:
    tag = (f"v{args.videos}-u{args.unique_videos}-f{args.frames}-t{args.tracks}-{args.height}x{args.width}"
           f"-c{args.categories}-fp{args.false_positives[0]}_{args.false_positives[1]}-s{args.seed}")
    gt_path, res_path = args.workdir / f"gt-{tag}.json", args.workdir / f"results-{tag}.json"
    if gt_path.exists() and res_path.exists():
        return gt_path, res_path
    args.workdir.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    base = random_gt(args.seed, videos=args.unique_videos, frames=(args.frames, args.frames),
                     sizes=((args.height, args.width),), categories=args.categories, empty_categories=0,
                     tracks=(args.tracks, args.tracks), crowd_rate=0.02, null_frame_rate=0.1, all_null_rate=0.0)
    base_results = noisy_predictions(base, args.seed, false_positives=tuple(args.false_positives), duplicate_rate=0.3,
                                     skip_video_rate=0.0, all_null_rate=0.05)
    gt, results = replicate(base, base_results, args.videos)
    gt_path.write_text(json.dumps(gt))
    res_path.write_text(json.dumps(results))
    print(f"generated {args.videos} videos in {time.perf_counter() - start:.1f} s -> {args.workdir}")
    return gt_path, res_path


def replicate(gt: dict, results: list, videos: int) -> tuple[dict, list]:
    """``videos`` videos: copies of ``gt``'s under fresh video and annotation ids."""
    base_ids = [v["id"] for v in gt["videos"]]
    out_gt = {"categories": gt["categories"], "videos": [], "annotations": []}
    out_results = []
    for new_id in range(1, videos + 1):
        old_id = base_ids[(new_id - 1) % len(base_ids)]
        video = next(v for v in gt["videos"] if v["id"] == old_id)
        out_gt["videos"].append({**video, "id": new_id})
        for ann in gt["annotations"]:
            if ann["video_id"] == old_id:
                out_gt["annotations"].append({**ann, "video_id": new_id, "id": len(out_gt["annotations"]) + 1})
        out_results += [{**r, "video_id": new_id} for r in results if r["video_id"] == old_id]
    return out_gt, out_results


def subset(gt: dict, results: list, videos: int) -> tuple[dict, list]:
    keep = {v["id"] for v in sorted(gt["videos"], key=lambda v: v["id"])[:videos]}
    return ({**gt, "videos": [v for v in gt["videos"] if v["id"] in keep],
             "annotations": [a for a in gt["annotations"] if a["video_id"] in keep]},
            [r for r in results if r["video_id"] in keep])


def timed(fn, *args):
    """``(result, wall seconds, CPU seconds)``: on a shared machine CPU time is the steadier number."""
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(*args)
    return out, time.perf_counter() - wall, time.process_time() - cpu


def main(argv=None):
    args = parse_args(argv)
    gt_path, res_path = build_files(args)
    scores, wall, cpu = timed(score_files, str(gt_path), str(res_path))
    gt, results = json.loads(gt_path.read_text()), json.loads(res_path.read_text())
    frames = sum(v["length"] for v in gt["videos"])
    print(f"data: {len(gt['videos'])} videos, {frames} frames, {len(gt['annotations'])} gt tracks, "
          f"{len(results)} predictions, {args.height}x{args.width}")
    print(f"score_files (JSON parse included): {wall:.2f} s wall, {cpu:.2f} s CPU ({frames / cpu:,.0f} frames/CPU-s)")
    _, wall, cpu = timed(evaluate, copy.deepcopy(gt), results)
    print(f"evaluate (dicts in memory):        {wall:.2f} s wall, {cpu:.2f} s CPU ({frames / cpu:,.0f} frames/CPU-s)")
    index = index_ground_truth(gt)
    by_video = group_results(results, index)
    matches, _, t_match = timed(lambda: [match_video(index.videos[v], index.annotations_by_video.get(v, []),
                                                     by_video.get(v, [])) for v in index.video_ids])
    _, _, t_acc = timed(accumulate, matches, index.category_ids)
    print(f"  match_video {t_match:.2f} s CPU ({1000 * t_match / len(matches):.2f} ms/video), "
          f"accumulate {t_acc:.3f} s CPU")
    print("AP %.4f  AP50 %.4f  AP75 %.4f  AR100 %.4f" % tuple(scores[k] for k in ("AP", "AP50", "AP75", "AR100")))
    if args.reference_videos:
        compare_reference(gt, results, args.reference_videos, len(gt["videos"]), cpu)


def compare_reference(gt, results, videos, total_videos, cpu_all):
    spec = importlib.util.spec_from_file_location("reference_ytvoseval", REFERENCE)
    reference = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(reference)
    small_gt, small_results = subset(gt, results, videos)
    ref, _, cpu_ref = timed(reference.reference_evaluate, small_gt, small_results)
    fast, _, cpu_fast = timed(evaluate, small_gt, small_results)
    worst = max(abs(ref["stats"][k] - fast.stats[k]) for k in ref["stats"])
    estimate = cpu_ref * total_videos / videos
    print(f"reference on {videos} videos: {cpu_ref:.2f} s CPU (tubelets {cpu_fast:.2f} s, max |diff| {worst:.1e}); "
          f"extrapolated to {total_videos} videos: {estimate:.1f} s CPU = {estimate / cpu_all:.1f}x tubelets")


if __name__ == "__main__":
    main()
