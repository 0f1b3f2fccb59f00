"""``make demo``: the main job on the embedded sample data, end to end.

Generates a small Shapes-VIS set (unless one with the same parameters is
there already), runs ``tubelets evaluate`` on it with the committed detector
checkpoint and the ``shapes-vis`` preset, prints the metrics and shows a ``tubelets query`` on the output.
"""

from __future__ import annotations

import json
import shlex
import sys

import fsspec

from tubelets.query import print_query

# The sample is Shapes-VIS data, so the demo runs with the preset made for it (configs/shapes-vis.yaml).
PRESET = "shapes-vis"
SAMPLE = {"videos": 6, "seed": 7, "width": 256, "height": 192, "hard": False}
EXAMPLE_SQL = (
    "SELECT t.video, t.tubelet_id, t.category_name, round(t.score, 3) AS score, t.first_frame, t.last_frame "
    "FROM tubelets t ORDER BY t.video, t.tubelet_id LIMIT 8"
)


def ensure_sample(data_url: str) -> None:
    """Generate the sample data set at ``data_url`` unless it is there with the same parameters."""
    from tubelets.synth import generate_dataset

    fs, path = fsspec.core.url_to_fs(data_url)
    if fs.exists(f"{path}/instances.json"):
        with fs.open(f"{path}/instances.json") as handle:
            info = json.load(handle).get("info", {})
        if all(info.get(key) == value for key, value in SAMPLE.items()):
            print(f"sample data: {data_url} (already there)", file=sys.stderr)
            return
    generate_dataset(data_url, **SAMPLE)
    print(f"sample data: generated {SAMPLE['videos']} Shapes-VIS videos in {data_url}", file=sys.stderr)


def run_demo(data_url: str, output_url: str, extra_args: tuple[str, ...] = ()) -> None:
    from tubelets.pipelines import evaluate

    ensure_sample(data_url)
    spec = evaluate.run([data_url, output_url, "--config", PRESET, *extra_args])
    print(f"\nmetrics of run {spec.run_id}:")
    print_query(output_url, f"SELECT scope, category_name, round(AP, 3) AS AP, round(AP50, 3) AS AP50, "
                f"round(AP75, 3) AS AP75, round(AR1, 3) AS AR1, round(AR10, 3) AS AR10 FROM metrics "
                f"WHERE run_id = '{spec.run_id}' ORDER BY scope DESC, category_id")
    print("\nquery the output with SQL, e.g.:")
    print(f"  tubelets query {shlex.quote(output_url)} {shlex.quote(EXAMPLE_SQL)}\n")
    print_query(output_url, EXAMPLE_SQL)
    print(f"\noutput is in {spec.run_url}/ (manifest.json, tubelets/, metrics/, results.json; dead_letters/ for "
          "inputs that failed)")
    print(f"look at one video: tubelets render {shlex.quote(output_url)} "
          f"{shlex.quote(data_url)}/videos/video_0000.mp4 video_0000-tubelets.mp4")
