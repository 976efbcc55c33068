#!/bin/bash
# The wheels a GPU machine without network access lacks to run ablate under JAX (its image has
# Python 3.12 with JAX, NumPy, pandas, pyarrow, statsmodels, scikit-learn, matplotlib, PyYAML,
# SciPy, rich, h5py, ml-dtypes, tqdm; not Keras, Optuna, pyDOE, SQLAlchemy). Fetched here,
# where pip reaches the package index, into .whl/ (ignored by git), for bench/gpu.sh:
#
#     bench/wheels.sh            # then carry .whl to the GPU machine with the checkout
#
# The versions are this checkout's JAX environment's (.venv-jax, as .ci/run builds it), so that
# the GPU runs what the CPU tests ran.
set -euo pipefail
cd "$(dirname "$0")/.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
rm -rf .whl && mkdir -p .whl
version() { .venv-jax/bin/python -c "import importlib.metadata as m; print(m.version('$1'))"; }
for name in keras namex optree optuna alembic Mako colorlog sqlalchemy pydoe; do
  python3 -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 --platform any \
    -d .whl "$name==$(version "$name")"
done
ls .whl
