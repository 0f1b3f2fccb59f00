"""``tubelets compare OUTPUT BASELINE_RUN CANDIDATE_RUN``: did the candidate really score differently?

For every VIS number (AP ... ARl), overall and per category: the baseline's, the
candidate's, their difference (candidate - baseline) and its 95 % paired bootstrap
interval over videos (:mod:`tubelets.metrics.vis_bootstrap`), then the videos whose
AP moved the most. It reads what an ``evaluate`` run stores, each video's matches
(the ``video_matches`` table) and the category names of the ``metrics`` table, and
never a mask or results.json: its cost depends on the videos and predictions, not
on the frames' size.

``--fail-on-drop METRIC=X`` makes it a gate: exit 4 (:class:`RegressionError`) when
the candidate is worse by more than X *and* beyond chance (the interval's upper end
is below 0). ``evaluate --baseline`` runs the same comparison after its run.
"""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from typing import Mapping, Optional, Sequence, TextIO

import fsspec
import numpy as np
import pyarrow as pa

from tubelets import runs, tables
from tubelets.errors import ConfigError, RegressionError, TubeletsError
from tubelets.metrics.vis_bootstrap import DET_FIELDS, PairedBootstrap, PairedRuns, bootstrap, video_ap
from tubelets.metrics.vis_match import VideoMatches
from tubelets.metrics.vis_store import row_to_matches
from tubelets.tables import METRIC_NAMES


class CompareError(TubeletsError):
    """Two runs that cannot be compared (missing, incomplete, without stored matches, other data): exit 2."""


# --- which runs may be compared ---------------------------------------------------------------------------------

def check_run(output_url: str, run_id: str, what: str = "run") -> dict:
    """The manifest of a complete VIS evaluate run with stored matches; a one-line error naming ``what`` otherwise."""
    manifest = runs.read_manifest(output_url, runs.check_run_id(run_id))
    if manifest is None and _is_folder(runs.run_url(output_url, run_id)):
        raise CompareError(f"{what} run {run_id} has no manifest (a run from before manifests, which stored no "
                           f"matches): evaluate again to compare it")
    if manifest is None:
        raise runs.RunNotFoundError(f"{what} {run_id}: {output_url} holds no such run (no {run_id}/manifest.json)")
    info = runs.RunInfo.from_manifest(run_id, manifest)
    if not info.complete:
        raise CompareError(f"{what} {info.describe()}: only complete runs are compared")
    task = runs.run_task(manifest)
    if task != "vis":
        raise CompareError(f"{what} run {run_id} is a {task} run: only VIS evaluate runs store the matches compared")
    if not manifest.get("dataset_digest") or not runs.inputs_with_files(output_url, run_id, "video_matches"):
        raise CompareError(f"{what} run {run_id} has no stored matches (a segment run, or an evaluate run from before "
                           f"tubelets stored them): evaluate again to compare it")
    return manifest


def _is_folder(url: str) -> bool:
    fs, path = fsspec.core.url_to_fs(url)
    return fs.isdir(path)


def check_same_dataset(baseline: Mapping, digest: str, candidate: str) -> None:
    """The baseline run must have scored the annotations whose digest is ``digest`` (``candidate`` names them)."""
    if baseline["dataset_digest"] != digest:
        raise CompareError(f"baseline run {baseline['run_id']} scored other annotations than {candidate} (digest "
                           f"{baseline['dataset_digest']} vs {digest}): compare runs of one data set")


def check_runs(output_url: str, baseline: str, candidate: str) -> None:
    """Both runs comparable, and two different runs of one data set."""
    if baseline == candidate:
        raise CompareError(f"the baseline and the candidate are the same run ({baseline}): give two runs")
    base = check_run(output_url, baseline, "baseline")
    other = check_run(output_url, candidate, "candidate")
    check_same_dataset(base, other["dataset_digest"], f"candidate run {candidate}")


# --- the comparison ---------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Comparison:
    """Two runs' numbers, differences and intervals (``result``: a = candidate, b = baseline) and moved videos."""

    baseline_run: str
    candidate_run: str
    result: PairedBootstrap
    videos: list  # dicts: video, video_id, baseline, candidate, difference (AP); drops first, then gains
    seed: int
    baseline_rows: list  # each run's own rows of its metrics table: VIS overall and category
    candidate_rows: list

    @property
    def category_names(self) -> dict[int, str]:
        return {row["category_id"]: row["category_name"] for row in self.baseline_rows + self.candidate_rows
                if row["scope"] == "category"}


def compare_runs(output_url: str, baseline: str, candidate: str, samples: int = 1000, seed: int = 0,
                 top: int = 10) -> Comparison:
    """Check the two runs, then compare them on their stored matches (``samples`` resamples of the videos)."""
    if samples < 1 or top < 0:
        raise ConfigError(f"--samples must be at least 1 and --top at least 0, got {samples} and {top}")
    check_runs(output_url, baseline, candidate)
    (base_matches, names), (cand_matches, _) = load_matches(output_url, baseline), load_matches(output_url, candidate)
    if [m.video_id for m in base_matches] != [m.video_id for m in cand_matches]:
        raise CompareError(f"runs {baseline} and {candidate} stored matches of different videos "
                           f"({len(base_matches)} and {len(cand_matches)} videos): compare runs of one data set")
    rows = own_metric_rows(output_url, baseline), own_metric_rows(output_url, candidate)
    categories = sorted({row["category_id"] for row in rows[0] + rows[1] if row["scope"] == "category"})
    with_gt = {int(c) for m in base_matches for c in m.gt_category.tolist()}
    pair = PairedRuns(cand_matches, base_matches, sorted(with_gt | set(categories)), categories)
    return Comparison(baseline, candidate, bootstrap(pair, samples, seed),
                      moved_videos(base_matches, cand_matches, names, top), seed, *rows)


def load_matches(output_url: str, run_id: str) -> tuple[list[VideoMatches], dict]:
    """A run's stored matches by ascending video id (the evaluator's order), and each video's name by id."""
    rows = sorted(tables.read_table(output_url, "video_matches", run_id).to_pylist(), key=lambda r: r["video_id"])
    return [row_to_matches(row) for row in rows], {row["video_id"]: row["video"] for row in rows}


def own_metric_rows(output_url: str, run_id: str) -> list[dict]:
    """The run's own VIS rows of its metrics table (overall and category; not those of a comparison)."""
    return [row for row in tables.read_table(output_url, "metrics", run_id).to_pylist()
            if row["task"] == "vis" and row["scope"] in ("overall", "category")]


def moved_videos(baseline: Sequence[VideoMatches], candidate: Sequence[VideoMatches], names: Mapping,
                 top: int) -> list[dict]:
    """The ``top`` videos whose AP dropped the most, then the ``top`` whose AP rose the most."""
    moved = []
    for before, after in zip(baseline, candidate):
        if all(np.array_equal(getattr(before, f), getattr(after, f)) for f in DET_FIELDS):
            continue  # the same predictions, the same AP: a rerun costs no accumulation
        old, new = video_ap(before), video_ap(after)
        if new != old and not math.isnan(new - old):
            moved.append({"video": names[before.video_id], "video_id": int(before.video_id), "baseline": old,
                          "candidate": new, "difference": new - old})
    drops = sorted((v for v in moved if v["difference"] < 0), key=lambda v: (v["difference"], v["video"]))
    gains = sorted((v for v in moved if v["difference"] > 0), key=lambda v: (-v["difference"], v["video"]))
    return drops[:top] + gains[:top]


# --- gates ------------------------------------------------------------------------------------------------------

@dataclasses.dataclass(frozen=True)
class Gate:
    """``--fail-on-drop METRIC=X``: fail when the overall METRIC drops by more than X, beyond chance."""

    metric: str
    drop: float

    @classmethod
    def parse(cls, text: str) -> "Gate":
        name, equals, value = str(text).partition("=")
        if name not in METRIC_NAMES:
            known = next((m for m in METRIC_NAMES if m.lower() == name.strip().lower()), None)
            raise ConfigError(f"--fail-on-drop {text!r}: " + (f"metric names are case-sensitive, did you mean {known}?"
                              if known else f"the metric must be one of {', '.join(METRIC_NAMES)}"))
        try:
            drop = float(value)
        except ValueError:
            drop = math.nan
        if not equals or not 0 <= drop <= 1:  # NaN fails both
            raise ConfigError(f"--fail-on-drop {text!r}: give METRIC=X with X an absolute drop between 0 and 1 "
                              f"(AP=0.01 allows one point of AP)")
        return cls(name, drop)

    def failure(self, comparison: Comparison) -> str:
        """What failed, in a few words; empty when the candidate passes (or the number is undefined)."""
        result, k = comparison.result, METRIC_NAMES.index(self.metric)
        difference, low, high = result.difference[0, k], result.low[0, k], result.high[0, k]
        if not (difference < -self.drop and high < 0):
            return ""
        return (f"{self.metric} dropped by {-difference:.4f} ({result.b[0, k]:.4f} -> {result.a[0, k]:.4f}, "
                f"95 % interval {low:+.4f}..{high:+.4f}), more than {self.metric}={self.drop:g} allows")


def parse_gates(texts: Optional[Sequence[str]]) -> list[Gate]:
    """Every ``--fail-on-drop`` value parsed; the first bad one is a one-line ``ConfigError`` (exit 2)."""
    return [Gate.parse(text) for text in texts or ()]


def regression(comparison: Comparison, gates: Sequence[Gate]) -> Optional[RegressionError]:
    """The error (exit 4) naming every gate the candidate fails, or None."""
    failed = [failure for gate in gates if (failure := gate.failure(comparison))]
    if not failed:
        return None
    return RegressionError(f"run {comparison.candidate_run} regressed against {comparison.baseline_run}: "
                           + "; ".join(failed))


def unchecked_gates(comparison: Comparison, gates: Sequence[Gate]) -> list[str]:
    """stderr lines for gates on a number that is undefined on this data set (nothing to check)."""
    undefined = [g for g in gates if math.isnan(comparison.result.difference[0, METRIC_NAMES.index(g.metric)])]
    return [f"tubelets: --fail-on-drop {g.metric}={g.drop:g} not checked: {g.metric} is undefined here "
            f"(no ground truth in its range)" for g in undefined]


# --- output -----------------------------------------------------------------------------------------------------

COLUMNS = ("baseline", "candidate", "difference", "low", "high")


def _number(value: float) -> Optional[float]:
    return None if math.isnan(value) else float(value)


def metric_rows(result: PairedBootstrap, row: int) -> list[dict]:
    """One dict per metric of ``result``'s row ``row`` (0 overall, k the k-th category); None where undefined."""
    arrays = (result.b, result.a, result.difference, result.low, result.high)
    return [{"metric": name, **{column: _number(array[row, k]) for column, array in zip(COLUMNS, arrays)}}
            for k, name in enumerate(METRIC_NAMES)]


def overall_rows(comparison: Comparison) -> list[dict]:
    return metric_rows(comparison.result, 0)


def category_rows(comparison: Comparison) -> list[dict]:
    """The numbers each category has (a metric without ground truth in its range is left out)."""
    names = comparison.category_names
    return [{"category_id": category, "category_name": names[category], **row}
            for index, category in enumerate(comparison.result.categories, start=1)
            for row in metric_rows(comparison.result, index) if row["baseline"] is not None]


def to_json(comparison: Comparison) -> str:
    """One object: the runs, the resampling, ``overall``, ``categories`` and ``videos`` (lists of records)."""
    return json.dumps({
        "baseline_run": comparison.baseline_run, "candidate_run": comparison.candidate_run,
        "samples": comparison.result.samples, "seed": comparison.seed, "overall": overall_rows(comparison),
        "categories": category_rows(comparison), "videos": comparison.videos}, indent=2) + "\n"


CSV_SCHEMA = pa.schema([("scope", pa.string()), ("category_id", pa.int64()), ("category_name", pa.string()),
                        ("video", pa.string()), ("metric", pa.string()), *[(c, pa.float64()) for c in COLUMNS]])


def _format(table: pa.Table, fmt: str) -> str:
    from tubelets.query import format_table  # here: it imports DuckDB, which evaluate's import need not pay for

    return format_table(table, fmt)


def to_csv(comparison: Comparison) -> str:
    """One long table: a row per overall metric, per category and metric, per moved video (its AP)."""
    videos = [{"video": v["video"], "metric": "AP", **{c: v.get(c) for c in COLUMNS}} for v in comparison.videos]
    rows = ([{"scope": "overall", **row} for row in overall_rows(comparison)]
            + [{"scope": "category", **row} for row in category_rows(comparison)]
            + [{"scope": "video", **row} for row in videos])
    return _format(pa.Table.from_pylist(rows, schema=CSV_SCHEMA), "csv")


def to_text(comparison: Comparison, overall_only: bool = False) -> str:
    """Aligned tables: overall, per category, the videos that moved; each interval as ``[low, high]``."""
    def table(rows: list[dict]) -> str:
        shown = [{k: v for k, v in row.items() if k not in ("low", "high")} | {"interval": _interval(row)}
                 for row in rows]
        return _format(pa.Table.from_pylist(shown), "table") if shown else "(none)\n"

    result = comparison.result
    title = (f"{comparison.candidate_run} (candidate) vs {comparison.baseline_run} (baseline): difference = "
             f"candidate - baseline, 95 % interval over {result.samples} resamples of the videos "
             f"(seed {comparison.seed})")
    parts = [title, table(overall_rows(comparison))]
    if not overall_only:
        videos = [{k: v for k, v in row.items() if k != "video_id"} for row in comparison.videos]
        parts += ["per category", table(category_rows(comparison)), "videos whose AP moved the most",
                  _format(pa.Table.from_pylist(videos), "table") if videos else "(none)\n"]
    return "\n".join(parts)


def _interval(row: Mapping) -> str:
    low, high = row.get("low"), row.get("high")
    return "NULL" if low is None or high is None else f"[{low:+.4f}, {high:+.4f}]"


def render(comparison: Comparison, fmt: str = "table") -> str:
    """The comparison as ``table``, ``csv`` or ``json``."""
    formats = {"table": to_text, "csv": to_csv, "json": to_json}
    if fmt not in formats:
        raise ConfigError(f"unknown format {fmt!r}; use table, csv or json")
    return formats[fmt](comparison)


def table_rows(comparison: Comparison) -> list[dict]:
    """The comparison as rows of the candidate run's ``metrics`` table (``evaluate --baseline``).

    Scope ``baseline``: the baseline's own overall and category rows. Scope ``difference``: one row per overall
    or category number that is defined, its metric's column holding candidate - baseline (the other 11 null)
    and ``difference_low``/``difference_high`` its 95 % interval. Every row names the baseline run.
    """
    common = {"run_id": comparison.candidate_run, "baseline_run_id": comparison.baseline_run,
              "created_at": tables.utc_now()}
    rows = [{**row, **common, "scope": "baseline"} for row in comparison.baseline_rows]
    position = {None: 0, **{c: k for k, c in enumerate(comparison.result.categories, start=1)}}
    for own in comparison.candidate_rows:
        numbers = metric_rows(comparison.result, position[own["category_id"]])
        rows += [{**own, **common, "scope": "difference", **dict.fromkeys(METRIC_NAMES),
                  row["metric"]: row["difference"], "difference_low": row["low"], "difference_high": row["high"]}
                 for row in numbers if row["difference"] is not None]
    return rows


def print_comparison(output_url: str, baseline: str, candidate: str, samples: int = 1000, seed: int = 0,
                     top: int = 10, fmt: str = "table", fail_on_drop: Sequence[str] = (),
                     out: Optional[TextIO] = None, err: Optional[TextIO] = None) -> Comparison:
    """``tubelets compare``: print the comparison, then raise :class:`RegressionError` (exit 4) where a gate fails."""
    gates = parse_gates(fail_on_drop)  # before reading anything: a bad gate costs nothing
    comparison = compare_runs(output_url, baseline, candidate, samples, seed, top)
    (out or sys.stdout).write(render(comparison, fmt))
    for line in unchecked_gates(comparison, gates):
        print(line, file=err or sys.stderr)
    failed = regression(comparison, gates)
    if failed:
        raise failed
    return comparison
