"""``tubelets report RUN_FOLDER OUT.html [--baseline RUN_ID]``: one self-contained HTML page about a run.

The page holds the run's manifest, AP/AR overall and per category as bar charts, precision-recall curves per
category, per-video AP (worst first), frame strips of the worst videos with the run's tubelets and the ground
truth drawn, dead letters by reason, and AP over every complete run of the same data set. Images are PNGs
embedded as data URIs and the CSS is inline: the file can be mailed or attached as it is, and opens offline.

Modules: ``data`` reads the run (manifest, tables, stored matches), ``figures`` draws the charts (matplotlib,
Agg), ``frames`` draws the frame strips (``tubelets.render``'s drawing), ``sections`` puts each section
together and ``page`` holds the HTML building blocks (every string from data escaped).
"""

from __future__ import annotations

import dataclasses
import time

import fsspec

from tubelets.report.data import ReportError, RunData, load_run, split_run_folder, video_rows

__all__ = ["ReportError", "ReportSummary", "build_page", "write_report"]


@dataclasses.dataclass(frozen=True)
class ReportSummary:
    """What :func:`write_report` wrote: where, how many bytes, in how many seconds."""

    out_url: str
    run_id: str
    bytes: int
    seconds: float


def build_page(run: RunData, baseline: RunData | None = None, worst: int = 3) -> str:
    """The report's HTML for a run (and a baseline run of the same OUTPUT)."""
    from tubelets.report import page, sections

    rows = video_rows(run, baseline)
    parts = [
        ("run", "Run", sections.manifest_section(run, baseline)),
        ("metrics", "AP and AR", sections.metrics_section(run, baseline)),
        ("pr", "Precision-recall curves", sections.pr_section(run, baseline)),
        ("videos", "Per-video AP", sections.videos_section(run, baseline, rows)),
        ("worst", "Worst videos", sections.worst_section(run, rows, worst)),
        ("dead-letters", "Dead letters", sections.dead_letters_section(run)),
        ("trend", "AP over runs of this data set", sections.trend_section(run, baseline)),
    ]
    title = f"tubelets report: {run.run_id}" + (f" vs {baseline.run_id}" if baseline else "")
    return page.document(title, sections.headline(run, baseline), parts)


def write_report(run_folder: str, out_url: str, baseline: str | None = None, worst: int = 3) -> ReportSummary:
    """Write the report of the complete run ``RUN_FOLDER`` (``OUTPUT/<run_id>``) to ``out_url`` (any fsspec URL).

    ``baseline`` is a run id of the same OUTPUT; ``worst`` how many of the worst videos get a frame strip.
    Raises :class:`ReportError` (exit 2) where the run or the baseline is missing or not complete.
    """
    if worst < 0:
        raise ReportError(f"--worst must be 0 or more, got {worst}")
    started = time.perf_counter()
    output_url, run_id = split_run_folder(run_folder)
    run = load_run(output_url, run_id)
    base = load_run(output_url, baseline, what="baseline run") if baseline else None
    if base is not None and base.run_id == run.run_id:
        raise ReportError(f"the baseline is the run itself ({run_id}): give another run id of {output_url}")
    encoded = build_page(run, base, worst).encode("utf-8")
    with fsspec.open(out_url, "wb") as handle:
        handle.write(encoded)
    return ReportSummary(out_url, run_id, len(encoded), time.perf_counter() - started)
