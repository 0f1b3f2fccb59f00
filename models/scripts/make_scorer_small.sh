#!/usr/bin/env bash
# Rebuild models/checkpoints/scorer-small.pt (the learned tubelet score) and the numbers in its
# model card (models/checkpoints/scorer-small.md), from the repository root:
#
#     bash models/scripts/make_scorer_small.sh [WORK_FOLDER]
#
# Four Shapes-VIS training sets (40 videos each, default and --hard difficulty, seeds 2001-2004:
# none of them used to train the detector or the tracker heads, or to tune a setting) are segmented
# and scored by the shipped detector and ipdt tracker with the shapes-vis preset and the learned
# score off; the scorer is fitted on their tubelets; then two held-out sets (30 videos each, seeds
# 3001 and 3002 --hard) are evaluated with the mean detector score and with the new scorer. Runs
# already in WORK_FOLDER are kept, not redone. About 12 minutes on 2 cores.
set -euo pipefail

WORK="${1:-/tmp/scorer-small}"
TUBELETS="${TUBELETS:-.venv/bin/tubelets}"
OFF=(--config shapes-vis --set scoring.checkpoint=null)

segment_set() {  # NAME SEED VIDEOS [--hard]: the set and its evaluate run with the mean detector score
    local name=$1 seed=$2 videos=$3
    shift 3
    [ -f "$WORK/data-$name/instances.json" ] || "$TUBELETS" synth "$WORK/data-$name" --videos "$videos" --seed "$seed" "$@"
    [ -d "$WORK/out-$name/ipdt" ] || "$TUBELETS" evaluate "$WORK/data-$name" "$WORK/out-$name" --run-id ipdt "${OFF[@]}"
}

segment_set train-d 2001 40
segment_set train-h 2002 40 --hard
segment_set train2-d 2003 40
segment_set train2-h 2004 40 --hard
segment_set test-d 3001 30
segment_set test-h 3002 30 --hard

"$TUBELETS" train scorer "$WORK/scorer-small.pt" \
    --run "$WORK/data-train-d" "$WORK/out-train-d/ipdt" --run "$WORK/data-train-h" "$WORK/out-train-h/ipdt" \
    --run "$WORK/data-train2-d" "$WORK/out-train2-d/ipdt" --run "$WORK/data-train2-h" "$WORK/out-train2-h/ipdt"

# Held out: the same runs' tubelets scored again by the new scorer (the model card's table).
for name in test-d test-h; do
    [ -d "$WORK/out-$name/learned" ] || "$TUBELETS" evaluate "$WORK/data-$name" "$WORK/out-$name" --run-id learned \
        --config shapes-vis --set scoring.checkpoint="$WORK/scorer-small.pt"
done
"$TUBELETS" query "$WORK/out-test-d" "SELECT run_id, round(AP, 3) AS AP, round(AP50, 3) AS AP50, round(AR10, 3) AS AR10 FROM metrics WHERE scope = 'overall' ORDER BY run_id"
"$TUBELETS" query "$WORK/out-test-h" "SELECT run_id, round(AP, 3) AS AP, round(AP50, 3) AS AP50, round(AR10, 3) AS AR10 FROM metrics WHERE scope = 'overall' ORDER BY run_id"
cp "$WORK/scorer-small.pt" models/checkpoints/scorer-small.pt
