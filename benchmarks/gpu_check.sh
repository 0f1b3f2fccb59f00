#!/usr/bin/env bash
# The GPU check (issue 32) as the lent machine runs it: install the carried wheels and this checkout into a scratch
# site, then run benchmarks/gpu_check.py with the same arguments (its docstring has the device command).
#
#   bash benchmarks/gpu_check.sh OUT_FOLDER [gpu_check.py options]
#
# GPU_CHECK_WHEELS: the wheels (default: .gpu-check-wheels, from `make gpu-check-wheels`); where it holds none,
# nothing is installed and PYTHON's own packages run the check (a development machine, the CPU smoke test).
# GPU_CHECK_SITE: where they go (default /tmp/gpu-check-site). PYTHON: the interpreter (default python3).
set -euo pipefail
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
wheels=${GPU_CHECK_WHEELS:-$repo/.gpu-check-wheels}
site=${GPU_CHECK_SITE:-/tmp/gpu-check-site}
python=${PYTHON:-python3}
shopt -s nullglob
carried=("$wheels"/*.whl)
if ((${#carried[@]})); then
    started=$SECONDS
    # --no-deps: the wheels are exactly what the machine lacks; the checkout installs as a package (setup.py maps
    # pipelines/, models/ ... to tubelets.*), without build isolation, which would need the network.
    "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --no-build-isolation --upgrade \
        --disable-pip-version-check --target "$site" "${carried[@]}" "$repo"
    export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
    echo "installed ${#carried[@]} wheels and tubelets into $site in $((SECONDS - started)) s" >&2
else
    echo "no wheels in $wheels: running with $python's own packages" >&2
fi
export PYTHONUNBUFFERED=1
exec "$python" "$repo/benchmarks/gpu_check.py" "$@"
