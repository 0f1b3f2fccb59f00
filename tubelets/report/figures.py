"""The report's charts: matplotlib figures drawn by Agg (no pyplot, so no global state or display) as PNG bytes.

Each function takes plain numbers (0..1 for AP and AR, shown in percent) and returns one PNG.
The run is drawn in blue, the baseline in grey, in every chart.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence

from matplotlib import dates
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from tubelets.metrics.vis_params import RECALL_THRESHOLDS

RUN_COLOUR, BASELINE_COLOUR, MARK_COLOUR = "#1f6fb4", "#a9a9a9", "#d62728"
DPI = 96
BAR_INCHES, MAX_INCHES = 0.4, 16.0  # a bar's width; the widest a figure gets (the page shows about 12)


def png(figure: Figure) -> bytes:
    """The figure as PNG bytes."""
    FigureCanvasAgg(figure)  # drawn by Agg, whatever backend the process chose: no pyplot, no display
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight")
    return buffer.getvalue()


def _percent(value: float | None) -> float:
    return 0.0 if value is None or value < 0 else 100.0 * value


Series = Mapping[str, Sequence[float | None]]  # {"run": [...], "baseline": [...]}, one value per label


def grouped_bars(panels: Sequence[tuple[str, Sequence[str], Series]]) -> bytes:
    """Panels of vertical bars side by side, ``(title, labels, series)`` each: a group per label, a bar per series.

    Values in %; a value of None (nothing to score) is left out and its place marked ``n/a``.
    """
    widths = [1.2 + BAR_INCHES * len(labels) * max(1, len(series)) for _, labels, series in panels]
    scale = min(1.0, MAX_INCHES / sum(widths))
    figure = Figure(figsize=(max(5.0, scale * sum(widths)), 3.4), layout="constrained")
    grid = figure.subplots(1, len(panels), squeeze=False, width_ratios=widths)
    for axes, (title, labels, series) in zip(grid[0], panels):
        width = 0.8 / max(1, len(series))
        for s, (name, values) in enumerate(series.items()):
            xs = [i + (s - (len(series) - 1) / 2) * width for i in range(len(labels))]
            bars = axes.bar(xs, [_percent(v) for v in values], width, label=name, color=_series_colour(s))
            axes.bar_label(bars, labels=[_bar_text(v) for v in values], fontsize=7, padding=1)
        _style_percent_axes(axes, title, labels)
    _legend(figure, len(panels[0][2]) > 1)
    return png(figure)


def _legend(figure: Figure, shown: bool) -> None:
    """One legend for the figure, above its panels (inside, it would cover bars at 100%)."""
    if shown:
        figure.legend(*figure.axes[0].get_legend_handles_labels(), loc="outside upper right", ncols=2, fontsize=8,
                      frameon=False)


def _series_colour(index: int) -> str:
    return RUN_COLOUR if index == 0 else BASELINE_COLOUR


def _bar_text(value: float | None) -> str:
    return "n/a" if value is None or value < 0 else f"{100 * value:.1f}"


def _style_percent_axes(axes, title: str, labels: Sequence[str]) -> None:
    tilt = max(map(len, labels), default=0) * len(labels) > 60  # long names, or many: tilted to fit
    axes.set_xticks(range(len(labels)), labels, rotation=30 if tilt else 0, ha="right" if tilt else "center",
                    fontsize=8)
    axes.set_ylim(0, 110)
    axes.set_ylabel("%")
    axes.set_title(title, fontsize=10)
    axes.grid(axis="y", alpha=0.3)
    axes.spines[["top", "right"]].set_visible(False)


def pr_curves(curves: Mapping[str, Mapping[str, tuple[Sequence[float], Sequence[float]]]]) -> bytes:
    """Precision-recall curves, one panel per category: ``{category: {series: (precision@0.5, precision@0.75)}}``.

    Precision is sampled at the protocol's recall thresholds (area all, 100 detections); IoU 0.5 solid, 0.75 dashed.
    """
    columns = min(3, max(1, len(curves)))
    rows = (len(curves) + columns - 1) // columns
    figure = Figure(figsize=(3.6 * columns, 2.9 * rows), layout="constrained")
    grid = figure.subplots(rows, columns, squeeze=False)
    for axes, (category, series) in zip(grid.flat, curves.items()):
        for s, (name, (at50, at75)) in enumerate(series.items()):
            # The baseline wide and faint under the run, so that where they agree both show.
            style = {"color": _series_colour(s), "linewidth": 1.6 if s == 0 else 3.5, "alpha": 1.0 if s == 0 else 0.6,
                     "zorder": 3 - s}
            axes.plot(RECALL_THRESHOLDS, at50, label=f"{name} IoU 0.5", **style)
            axes.plot(RECALL_THRESHOLDS, at75, linestyle="--", label=f"{name} IoU 0.75", **style)
        axes.set(xlim=(0, 1), ylim=(0, 1.05), xlabel="recall", ylabel="precision")
        axes.set_title(category, fontsize=10)
        axes.grid(alpha=0.3)
    for axes in list(grid.flat)[len(curves):]:
        axes.set_visible(False)
    grid.flat[0].legend(fontsize=7, frameon=False, loc="lower left", handlelength=4)
    return png(figure)


def video_bars(videos: Sequence[str], aps: Sequence[float | None],
               baseline_aps: Sequence[float | None] | None = None) -> bytes:
    """Horizontal bars of per-video AP in %, the first video on top; the baseline's beside each when given."""
    height = 0.9 + 0.24 * len(videos) * (2 if baseline_aps is not None else 1)
    figure = Figure(figsize=(7.5, max(2.2, height)), layout="constrained")
    axes = figure.subplots()
    series = {"run": aps, **({"baseline": baseline_aps} if baseline_aps is not None else {})}
    width = 0.8 / len(series)
    for s, (name, values) in enumerate(series.items()):
        ys = [i + (s - (len(series) - 1) / 2) * width for i in range(len(videos))]
        bars = axes.barh(ys, [_percent(v) for v in values], width, label=name, color=_series_colour(s))
        axes.bar_label(bars, labels=[_bar_text(v) for v in values], fontsize=7, padding=2)
    axes.set_yticks(range(len(videos)), videos, fontsize=8)
    axes.invert_yaxis()
    axes.set(xlim=(0, 112), xlabel="AP (%)")
    axes.grid(axis="x", alpha=0.3)
    axes.spines[["top", "right"]].set_visible(False)
    _legend(figure, baseline_aps is not None)
    return png(figure)


def trend(points: Sequence, run_id: str, baseline_id: str | None = None) -> bytes:
    """AP (%) of runs by start time, one line per tracker; ``run_id`` marked red, ``baseline_id`` ringed."""
    figure = Figure(figsize=(7.5, 3.2), layout="constrained")
    axes = figure.subplots()
    for tracker in sorted({point.tracker for point in points}):
        mine = [point for point in points if point.tracker == tracker]
        axes.plot([p.started_at for p in mine], [100 * p.ap for p in mine], marker="o", label=tracker or "?")
    for point in points:
        if point.run_id in (run_id, baseline_id):
            this = point.run_id == run_id
            axes.scatter([point.started_at], [100 * point.ap], s=160, zorder=3, facecolors=MARK_COLOUR if this else
                         "none", edgecolors=MARK_COLOUR if this else "black", marker="*" if this else "o")
            axes.annotate(point.run_id, (point.started_at, 100 * point.ap), textcoords="offset points",
                          xytext=(6, 8), fontsize=8)
    axes.set(ylabel="AP (%)", ylim=(0, 105), xlabel="run started (UTC)")
    axes.grid(alpha=0.3)
    axes.legend(title="tracker", fontsize=8, title_fontsize=8, frameon=False, loc="lower left")
    locator = dates.AutoDateLocator(maxticks=8)
    axes.xaxis.set_major_locator(locator)
    axes.xaxis.set_major_formatter(dates.ConciseDateFormatter(locator))
    return png(figure)
