"""``tubelets report``: one self-contained HTML page about a real evaluate run, with and without a baseline.

Two oracle runs of the three-video set share one OUTPUT: ``base``, and ``cand`` on a copy of the set in a folder
named ``da<b>ta`` whose third mp4 is corrupt (one dead letter, and a data string that must come out escaped).
"""

from __future__ import annotations

import base64
import contextlib
import io
import re
import shutil

import numpy as np
import pytest
from PIL import Image
from tubelets.pipelines import evaluate

from tubelets import runs
from tubelets.cli import main
from tubelets.report import ReportError, page, write_report

HEADINGS = ("Run", "AP and AR", "Precision-recall curves", "Per-video AP", "Worst videos", "Dead letters",
            "AP over runs of this data set")
IMAGE = re.compile(r'<img [^>]*src="data:image/png;base64,([A-Za-z0-9+/=]+)"')


@pytest.fixture(scope="module")
def output(shapes_url, oracle, run_flags, tmp_path_factory) -> str:
    """OUTPUT holding the complete runs ``base`` and ``cand`` (the latter with one dead letter)."""
    root = tmp_path_factory.mktemp("report")
    copy = root / "da<b>ta"
    shutil.copytree(shapes_url, copy)
    (copy / "videos" / "video_0002.mp4").write_bytes(
        np.random.default_rng(0).integers(0, 256, 4096, np.uint8).tobytes()
    )
    out = str(root / "out")
    with oracle(), contextlib.redirect_stderr(io.StringIO()):
        evaluate.run([shapes_url, out, "--run-id", "base", "--tracker", "iou", *run_flags])
        evaluate.run([str(copy), out, "--run-id", "cand", "--tracker", "iou",
                      "--set", "calibration.score_threshold=0.6", *run_flags])
    return out


@pytest.fixture(scope="module")
def compared(output, tmp_path_factory) -> str:
    """The report of ``cand`` against ``base``."""
    path = tmp_path_factory.mktemp("report-html") / "cand.html"
    write_report(f"{output}/cand", str(path), baseline="base")
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def alone(output, tmp_path_factory) -> str:
    """The report of ``base`` alone."""
    path = tmp_path_factory.mktemp("report-html") / "base.html"
    write_report(f"{output}/base", str(path))
    return path.read_text(encoding="utf-8")


def images(html: str) -> list[Image.Image]:
    found = []
    for encoded in IMAGE.findall(html):
        image = Image.open(io.BytesIO(base64.b64decode(encoded, validate=True)))
        image.load()
        assert image.format == "PNG" and image.width > 0 and image.height > 0
        found.append(image)
    return found


def assert_self_contained(html: str) -> None:
    assert html.count("<img ") == len(IMAGE.findall(html))  # every image is an embedded PNG
    assert "http" not in html and 'src="/' not in html and "<script" not in html and "<link" not in html


def test_the_compared_report_has_every_section_and_only_embedded_images(compared):
    for heading in HEADINGS:
        assert f"<h2>{heading}</h2>" in compared
    assert_self_contained(compared)
    # Overall bars, per-category bars, PR curves, per-video bars, trend; 3 videos x 6 frames x (run, truth).
    assert len(images(compared)) == 5 + 3 * 6 * 2


def test_a_dead_letter_video_scores_zero_comes_first_and_its_frames_come_from_the_jpegs(compared):
    videos = compared.split('id="videos"')[1].split("</section>")[0]
    first = videos.split("<td>")[1]
    assert first.startswith("video_0002 (dead letter)</td>")
    worst = compared.split('id="worst"')[1].split("</section>")[0]
    assert "<h3>video_0002 (dead letter): AP 0.0" in worst and "Frames unavailable" not in worst


def test_strings_from_the_data_are_escaped(compared):
    assert "da&lt;b&gt;ta" in compared and "da<b>ta" not in compared


def test_the_comparison_shows_the_baseline_and_the_config_difference(compared):
    assert "baseline base" in compared and "vs baseline base" in compared
    assert "calibration.score_threshold" in compared and "0.6" in compared
    assert "baseline AP" in compared and "change against the baseline" in compared
    assert "2 complete runs" in compared  # the trend: both runs scored the same annotations


def test_the_dead_letter_is_listed_by_reason(compared):
    dead = compared.split('id="dead-letters"')[1].split("</section>")[0]
    assert "video_0002.mp4" in dead and "not_a_video" in dead and "<td class=\"num\">1</td>" in dead


def test_a_report_without_baseline_says_so_and_still_draws_everything(alone):
    for heading in HEADINGS:
        assert f"<h2>{heading}</h2>" in alone
    assert_self_contained(alone)
    assert "No baseline" in alone and "No dead letters" in alone and "worst first by AP" in alone
    assert len(images(alone)) == 5 + 3 * 6 * 2


def test_the_cli_writes_the_report_and_refuses_a_missing_baseline_in_one_line(output, tmp_path, capsys):
    out = tmp_path / "r.html"
    assert main(["report", f"{output}/base", str(out), "--worst", "1"]) == 0
    assert "wrote the report of run base" in capsys.readouterr().err and out.stat().st_size > 0
    assert main(["report", f"{output}/base", str(tmp_path / "x.html"), "--baseline", "nope"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("tubelets: error: baseline run nope is not in") and err.count("\n") == 1
    assert not (tmp_path / "x.html").exists()


def test_an_incomplete_run_or_a_folder_that_is_no_run_is_refused(tmp_path):
    runs.claim_run(str(tmp_path), "half", {"input": "x", "command": "evaluate"})
    with pytest.raises(ReportError, match="half: running .* a report needs a complete run"):
        write_report(str(tmp_path / "half"), str(tmp_path / "r.html"))
    with pytest.raises(ReportError, match="no nothing/manifest.json"):
        write_report(str(tmp_path / "nothing"), str(tmp_path / "r.html"))


def test_a_run_without_vis_metrics_gets_one_line_per_empty_section(tmp_path):
    runs.claim_run(str(tmp_path), "seg", {"input": "clips/*.mp4", "command": "segment"})
    runs.update_manifest(str(tmp_path), "seg", status=runs.COMPLETE, counters={"videos": 0, "frames": 0})
    write_report(str(tmp_path / "seg"), str(tmp_path / "r.html"))
    html = (tmp_path / "r.html").read_text()
    assert html.count("A segment run scores nothing") == 6 and "No dead letters" in html and "<img" not in html


def test_the_page_builder_escapes_every_cell_and_attribute():
    evil = '<script>alert("x")</script>'
    built = page.document(evil, page.tag("h1", evil), [("a", evil, page.join([
        page.table([evil], [[evil]]), page.facts([[evil, evil]]), page.note(evil), page.card(evil, evil, 0.1),
        page.image(b"\x89PNG", evil)]))])
    assert "<script" not in built and built.count("&lt;script&gt;") == 12
    assert page.text(page.Markup("<b>kept</b>")) == "<b>kept</b>"
