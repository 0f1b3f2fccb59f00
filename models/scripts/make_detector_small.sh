#!/usr/bin/env bash
# Rebuild models/checkpoints/detector-small.pt and the numbers in its model card
# (models/checkpoints/detector-small.md), from the repository root:
#
#     bash models/scripts/make_detector_small.sh [WORK_FOLDER]
#
# Generates the Shapes-VIS training (1000 videos, seed 1) and held-out evaluation
# (20 videos, seed 1234) sets, trains the `small` preset with the configs/detector_small.yaml recipe
# (seeded: the same machine gives the same weights), evaluates per-frame mask AP,
# and copies the checkpoint into the package.
set -euo pipefail

WORK="${1:-/tmp/detector-small}"
PY="${PY:-.venv/bin/python}"
THREADS="${THREADS:-1}"  # one thread: faster than two on a shared 2-core machine

# JPEG frames only (the mp4 copies `tubelets synth` also writes are not needed here);
# the frames are the same as `tubelets synth OUT --videos N --seed S` writes.
"$PY" -c "from tubelets.synth import generate_dataset as g; g('$WORK/shapes-train', videos=1000, seed=1, write_videos=False)"
"$PY" -c "from tubelets.synth import generate_dataset as g; g('$WORK/shapes-eval', videos=20, seed=1234, write_videos=False)"
time "$PY" -m tubelets.models.train_detector "$WORK/shapes-train" "$WORK/detector-small.pt" \
    --config detector_small --threads "$THREADS"
"$PY" -m tubelets.models.evaluate_detector "$WORK/shapes-eval" --config detector_small \
    --checkpoint "$WORK/detector-small.pt" --threads "$THREADS" | tee "$WORK/eval.json"
cp "$WORK/detector-small.pt" models/checkpoints/detector-small.pt
