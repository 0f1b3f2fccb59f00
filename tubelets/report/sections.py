"""The report's sections: each turns a run's data (and the baseline's) into figures and HTML.

A section with nothing to show says so in one line (:func:`page.note`) instead of failing.
"""

from __future__ import annotations

import numpy as np
import pyarrow.compute as pc

from tubelets import tables
from tubelets.io.dataset import YouTubeVISDataset
from tubelets.metrics.vis_params import IOU_THRESHOLDS
from tubelets.report import data, figures, frames
from tubelets.report.page import Markup, card, facts, image, join, note, signed, table, tag

OVERALL = ("AP", "AP50", "AP75", "APs", "APm", "APl", "AR1", "AR10", "AR100", "ARs", "ARm", "ARl")
HEADLINE = ("AP", "AP50", "AP75", "AR1", "AR10")
MAX_VIDEO_BARS = 40  # the chart shows the worst 40 videos; the table shows them all


def percent(value: float | None) -> str:
    return "n/a" if value is None or value < 0 else f"{100 * value:.1f}"


def no_vis_reason(run: data.RunData) -> str:
    """Why a run has no VIS numbers, in a few words."""
    if run.manifest.get("command") != "evaluate":
        return (f"A {run.manifest.get('command', 'segment')} run scores nothing: "
                "tubelets evaluate scores a labelled data set.")
    return f"A {run.task} run has no VIS metrics: its J&F numbers are in the metrics table."


def headline(run: data.RunData, baseline: data.RunData | None) -> Markup:
    """The page's title and the headline numbers as cards, with their change against the baseline."""
    versus = f" vs baseline {baseline.run_id}" if baseline else ""
    title = tag("h1", join([f"Run {run.run_id}", tag("small", f"  {run.manifest.get('input', '')}{versus}")]))
    if run.overall is None:
        return join([title, note(no_vis_reason(run))])
    base = baseline.overall if baseline else None
    cards = [card(name, percent(run.overall[name]), _change(run.overall, base, name)) for name in HEADLINE]
    return join([title, tag("div", join(cards), class_="cards")])


def _change(row: dict, base: dict | None, name: str) -> float | None:
    if base is None or row.get(name) is None or base.get(name) is None:
        return None
    return row[name] - base[name]


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "n/a"
    minutes, rest = divmod(round(seconds), 60)
    return f"{minutes} min {rest} s" if minutes else f"{seconds:.1f} s"


def manifest_facts(run: data.RunData) -> dict[str, str]:
    """``{label: value}`` of what a reader looks for in the run's manifest, in reading order."""
    m, counters = run.manifest, run.manifest.get("counters") or {}
    seconds = data.duration_seconds(m)
    rate = f"{counters['frames'] / seconds:.1f}" if seconds and counters.get("frames") is not None else "n/a"
    resumed = f" (resumed, {m['attempts']} attempts)" if int(m.get("attempts", 1) or 1) > 1 else ""
    return {
        "data set": m.get("input", ""), "run id": run.run_id, "status": m.get("status", ""),
        "command": f"{m.get('command', '')} ({run.task})", "tracker": run.tracker,
        "config hash": m.get("config_hash", ""), "checkpoint id": m.get("checkpoint_id", ""),
        "data set digest": m.get("dataset_digest", "n/a"),
        "versions": ", ".join(f"{name} {version}" for name, version in sorted((m.get("versions") or {}).items())),
        "host": m.get("host", ""), "started (UTC)": m.get("started_at", ""), "ended (UTC)": m.get("ended_at", ""),
        "duration": _duration(seconds) + resumed, "frames/s": rate,
        "videos": f"{counters.get('videos', 'n/a')} of {m.get('inputs', 'n/a')} inputs",
        **{name.replace("_", " "): str(counters.get(name, "n/a")) for name in ("frames", "tubelets", "dead_letters")},
        "exit code": str(m.get("exit_code", "n/a")),
    }


def manifest_section(run: data.RunData, baseline: data.RunData | None) -> Markup:
    """The run's manifest (and the baseline's beside it), then the config keys that differ between them."""
    columns = [manifest_facts(run)] + ([manifest_facts(baseline)] if baseline else [])
    rows = [[label, *(_status(c[label]) if label == "status" else c[label] for c in columns)] for label in columns[0]]
    header = ["", f"run {run.run_id}", f"baseline {baseline.run_id}"] if baseline else None
    if baseline is None:
        return join([facts(rows, header), note("No baseline: give --baseline RUN_ID to compare with another run.")])
    differences = data.config_differences(run.manifest, baseline.manifest)
    changed = (table(["config key", "run", "baseline"], [[key, repr(a), repr(b)] for key, a, b in differences])
               if differences else note("The two runs have the same config."))
    return join([facts(rows, header), tag("h3", "Config differences"), changed])


def _status(value: str) -> Markup:
    return tag("span", value, class_=f"badge {value}")


def metrics_section(run: data.RunData, baseline: data.RunData | None) -> Markup:
    """AP and AR overall and per category as bar charts, the baseline's beside the run's."""
    if run.overall is None:
        return note(no_vis_reason(run))
    names = [name for name in OVERALL if run.overall[name] is not None
             or (baseline and baseline.overall and baseline.overall[name] is not None)]
    overall = figures.grouped_bars([("overall", names, _series(run.overall, baseline and baseline.overall, names))])
    parts = [image(overall, "AP and AR overall")]
    if baseline is not None and baseline.overall is None:
        parts.append(note(f"The baseline {baseline.run_id} has no VIS metrics. {no_vis_reason(baseline)}"))
    categories = _category_rows(run, baseline)
    if not categories:
        return join([*parts, note("No category has ground truth in this run.")])
    labels = [name for name, _, _ in categories]
    panels = []
    for metric in ("AP", "AR10"):
        series = {"run": [mine.get(metric) for _, mine, _ in categories]}
        if baseline is not None:
            series["baseline"] = [(theirs or {}).get(metric) for _, _, theirs in categories]
        panels.append((f"{metric} per category", labels, series))
    return join([*parts, image(figures.grouped_bars(panels), "AP and AR10 per category")])


def _series(row: dict, base: dict | None, names: list[str]) -> dict:
    series = {"run": [row[name] for name in names]}
    if base is not None:
        series["baseline"] = [base[name] for name in names]
    return series


def _category_rows(run: data.RunData, baseline: data.RunData | None) -> list[tuple[str, dict, dict | None]]:
    """``(category name, run's row, baseline's row or None)`` of the categories the run scored."""
    theirs = {row["category_id"]: row for row in baseline.categories} if baseline else {}
    return [(row["category_name"] or str(row["category_id"]), row, theirs.get(row["category_id"]))
            for row in run.categories]


def pr_section(run: data.RunData, baseline: data.RunData | None) -> Markup:
    """Precision-recall curves per category at IoU 0.5 and 0.75 (area all, 100 detections)."""
    if run.accumulated is None:
        return note(no_vis_reason(run) if run.overall is None else "This run stored no per-video matches "
                    "(written by a tubelets before the video_matches table): no curves to draw.")
    names = {row["category_id"]: row["category_name"] for row in run.categories}
    theirs = {c: (a, b) for c, a, b in _curves(baseline.accumulated)} if baseline and baseline.accumulated else {}
    curves = {}
    for category, at50, at75 in _curves(run.accumulated):
        series = {"run": (at50, at75)}
        if category in theirs:
            series["baseline"] = theirs[category]
        curves[names.get(category, str(category))] = series
    if not curves:
        return note("No category has ground truth in this run: no curves to draw.")
    return join([image(figures.pr_curves(curves), "precision-recall curves per category"),
                 note("Precision at each of the 101 recall points of the protocol: solid IoU 0.5, dashed IoU 0.75.")])


def _curves(metrics) -> list[tuple[int, np.ndarray, np.ndarray]]:
    """``(category id, precision at IoU 0.5, at IoU 0.75)`` of each category with ground truth."""
    t50, t75 = (int(np.flatnonzero(IOU_THRESHOLDS == iou)[0]) for iou in (0.5, 0.75))
    found = []
    for k, category in enumerate(metrics.category_ids):
        at50, at75 = metrics.precision[t50, :, k, 0, -1], metrics.precision[t75, :, k, 0, -1]
        if (at50 > -1).any():
            found.append((category, at50.clip(0), at75.clip(0)))
    return found


def videos_section(run: data.RunData, baseline: data.RunData | None, rows: list[data.VideoRow]) -> Markup:
    """Per-video AP as a bar chart (the worst first) and a table."""
    if not rows:
        return note(no_vis_reason(run) if run.overall is None else "This run stored no per-video matches.")
    order = "change against the baseline" if baseline else "AP"
    shown = [row for row in rows if row.ap is not None or (baseline and row.baseline_ap is not None)][:MAX_VIDEO_BARS]
    dead = data.dead_videos(run)
    chart = figures.video_bars([video_label(row.video, dead) for row in shown], [row.ap for row in shown],
                               [row.baseline_ap for row in shown] if baseline else None) if shown else None
    header = ["video", "AP", *(["baseline AP", "change"] if baseline else []), "ground truth", "predictions"]
    body = [[video_label(row.video, dead), percent(row.ap),
             *([percent(row.baseline_ap), signed(row.change)] if baseline else []),
             row.num_gt, row.num_predictions] for row in rows]
    numeric = range(1, len(header))
    more = f" (the chart shows the first {MAX_VIDEO_BARS})" if len(rows) > MAX_VIDEO_BARS else ""
    return join([note(f"{len(rows)} videos, worst first by {order}{more}; a video without ground truth has no AP."),
                 image(chart, "AP per video") if chart else note("No video has ground truth to score."),
                 table(header, body, numeric=list(numeric))])


def video_label(video: str, dead: set[str]) -> str:
    """The video's name, and ``(dead letter)`` where it could not be read (it scores 0 where it has ground truth)."""
    return f"{video} (dead letter)" if video in dead else video


def worst_section(run: data.RunData, rows: list[data.VideoRow], worst: int) -> Markup:
    """The worst videos' frame strips: the run's tubelets over each frame, the ground truth beside it."""
    chosen = [row for row in rows if row.ap is not None][:worst]
    if not chosen:
        return note("--worst 0: no frames shown." if not worst else no_vis_reason(run) if run.overall is None
                    else "No video with an AP to show.")
    try:
        dataset = YouTubeVISDataset(str(run.manifest.get("input", "")))
        names = {int(c["id"]): c["name"] for c in dataset.categories}
    except Exception as error:  # noqa: BLE001 - the data set may be gone or moved: the rest of the report stands
        return note(f"The data set {run.manifest.get('input')!r} cannot be read here ({error}): no frames shown.")
    tubelets = tables.read_table(run.output_url, "tubelets", run.run_id)
    source = str(((run.manifest.get("config") or {}).get("io") or {}).get("source") or "video")
    dead = data.dead_videos(run)
    return join(_strip(dataset, row, video_label(row.video, dead), tubelets, names, source) for row in chosen)


def _strip(dataset: YouTubeVISDataset, row: data.VideoRow, label: str, tubelets, names: dict, source: str) -> Markup:
    """One video's strip: a row of frames with the run's tubelets, a row with the ground truth."""
    change = join([", ", signed(row.change), " against the baseline"]) if row.change is not None else ""
    title = tag("h3", join([f"{label}: AP {percent(row.ap)}", change]))
    rows = tubelets.filter(pc.equal(tubelets.column("video"), row.video)).to_pylist()
    try:
        strip = frames.video_strip(dataset, row.video, rows, names, source=source)
    except Exception as error:  # noqa: BLE001 - one video's frames missing does not sink the report
        return join([title, note(f"Frames unavailable: {error}")])
    header = ["", *(f"frame {frame.t}" for frame in strip)]
    run_row = [Markup("run<br>tubelets"), *(image(f.run_png, f"frame {f.t}, run", "") for f in strip)]
    truth_row = [Markup("ground<br>truth"), *(image(f.truth_png, f"frame {f.t}, ground truth", "") for f in strip)]
    return join([title, table(header, [run_row, truth_row], class_="strip")])


def dead_letters_section(run: data.RunData) -> Markup:
    """Dead letters by reason: how many, at which stage, and one input with its message."""
    groups = data.dead_letter_groups(run.dead_letters)
    if not groups:
        return note("No dead letters: every input was read.")
    rows = [[g.error_type, g.count, g.stages, tag("code", g.example_input), g.example_message[:300]] for g in groups]
    return table(["error type", "count", "stage", "example input", "its message"], rows, numeric=[1])


def trend_section(run: data.RunData, baseline: data.RunData | None) -> Markup:
    """AP of every complete run of the same data set (same annotations digest) by start time."""
    digest = run.manifest.get("dataset_digest")
    if not digest or run.overall is None:
        why = no_vis_reason(run) if run.overall is None else "Its manifest has no dataset_digest (an older run)."
        return note(f"No trend. {why}")
    points = data.trend_points(run.output_url, digest)
    if not points:
        return note("No complete run of this data set has VIS metrics.")
    chart = figures.trend(points, run.run_id, baseline.run_id if baseline else None)
    rows = [[p.run_id + (" (this run)" if p.run_id == run.run_id else ""), p.started_at.isoformat(), p.tracker,
             percent(p.ap)] for p in reversed(points[-20:])]
    return join([note(f"{len(points)} complete runs in {run.output_url} scored data set {digest}; "
                      f"this run is the red star."), image(chart, "AP over runs"),
                 table(["run", "started (UTC)", "tracker", "AP"], rows, numeric=[3])])
