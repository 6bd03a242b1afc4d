#!/usr/bin/env bash
# The package as people install it: build the sdist and the wheel (`python -m build`), install the wheel
# into a fresh venv (jax, jaxlib and numpy come from the package index; pip's cache makes a rerun quick)
# and use it from outside the source tree: import every subpackage, check the version, py.typed and the
# `jcnn` command, and init, apply and train a tiny model. Exits non-zero on the first failure.
#
#   .ci/wheel_smoke.sh              # BUILD_PYTHON: a python with `build` (default .venv/bin/python)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
BUILD_PYTHON=${BUILD_PYTHON:-$ROOT/.venv/bin/python}
VENV_PYTHON=${VENV_PYTHON:-python3}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

t0=$SECONDS
# Build from a copy of the files git would commit (tracked and new, not ignored): stale build/ and
# *.egg-info/ directories of the checkout must not leak into the sdist or the wheel.
mkdir "$work/src"
git -C "$ROOT" ls-files -z --cached --others --exclude-standard |
  (cd "$ROOT" && xargs -0 tar cf - --ignore-failed-read 2>"$work/tar.log") | tar xf - -C "$work/src" ||
  { cat "$work/tar.log" >&2; echo "wheel smoke: copying the source tree failed" >&2; exit 1; }
echo "wheel smoke: building the sdist and the wheel"
if ! "$BUILD_PYTHON" -m build --outdir "$work/dist" "$work/src" >"$work/build.log" 2>&1; then
  cat "$work/build.log" >&2
  echo "wheel smoke: python -m build failed" >&2
  exit 1
fi
sdist=$(ls "$work"/dist/jcnn-*.tar.gz)
wheel=$(ls "$work"/dist/jcnn-*.whl)
t_build=$((SECONDS - t0)); t0=$SECONDS
tar tzf "$sdist" >"$work/sdist.txt"
for member in LICENSE pyproject.toml README.md jcnn/py.typed jcnn/__init__.py; do
  grep -q "^jcnn-[^/]*/$member\$" "$work/sdist.txt" || { echo "wheel smoke: the sdist lacks $member" >&2; exit 1; }
done

echo "wheel smoke: installing $(basename "$wheel") into a fresh venv"
"$VENV_PYTHON" -m venv "$work/venv"
"$work/venv/bin/python" -m pip install -q --disable-pip-version-check --no-compile "$wheel"
t_install=$((SECONDS - t0)); t0=$SECONDS

cd "$work"  # away from the source tree: `import jcnn` must find the installed package
"$work/venv/bin/python" - "$ROOT" <<'EOF'
import importlib
import importlib.metadata
import importlib.resources
import pathlib
import sys

import jcnn

root = pathlib.Path(sys.argv[1]).resolve()
where = pathlib.Path(jcnn.__file__).resolve()
assert root not in where.parents, f"imported jcnn from the source tree ({where}), not from the wheel"
assert jcnn.__version__ == importlib.metadata.version("jcnn"), (jcnn.__version__, importlib.metadata.version("jcnn"))
assert (importlib.resources.files("jcnn") / "py.typed").is_file(), "py.typed is not installed"
requires = importlib.metadata.requires("jcnn") or []
runtime = sorted(r.split(";")[0].split(">")[0].split("=")[0].strip() for r in requires if "extra ==" not in r)
assert runtime == ["jax", "jaxlib", "numpy"], runtime
for name in ("ops", "layers", "models", "optim", "losses", "metrics", "initializers", "reference", "data", "interop",
             "training.train", "training.checkpoint", "inspection.summary", "inspection.intermediates",
             "inspection.paths", "scale.precision", "scale.distributed", "serving.inference", "cli.app"):
    importlib.import_module(f"jcnn.{name}")  # every subpackage shipped, none needs torch or the extras
for old in ("train", "checkpoint", "paths", "precision", "distributed", "inference"):  # the names of 0.1
    assert importlib.import_module(f"jcnn.{old}").__name__ != f"jcnn.{old}"

import jax
import numpy as np
from jcnn import losses, optim

model = jcnn.serial(jcnn.Conv(4, 3, padding=1), jcnn.BatchNorm(), jcnn.Relu, jcnn.MaxPool(2), jcnn.GlobalAvgPool,
                    ("head", jcnn.Dense(3)))
out_shape, params, state = model.init(jax.random.PRNGKey(0), (-1, 8, 8, 1))
assert out_shape == (-1, 3), out_shape
x = np.random.default_rng(0).normal(size=(4, 8, 8, 1)).astype(np.float32)
y = np.array([0, 1, 2, 0])
opt = optim.adam(1e-2)

@jax.jit
def step(params, state, opt_state):
    def loss_fn(p):
        logits, new_state = model.apply(p, state, x, train=True)
        return losses.softmax_cross_entropy(logits, y), new_state
    (loss, new_state), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
    updates, opt_state = opt.update(grads, opt_state, params)
    return optim.apply_updates(params, updates), new_state, opt_state, loss

opt_state = opt.init(params)
first = None
for _ in range(5):
    params, state, opt_state, loss = step(params, state, opt_state)
    first = float(loss) if first is None else first
assert np.isfinite(float(loss)) and float(loss) < first, (first, float(loss))
logits, _ = model.apply(params, state, x, train=False)
assert logits.shape == (4, 3)
table = str(jcnn.summary(jcnn.models.lenet5(), (1, 32, 32, 1)))
assert "61,706" in table, table  # LeNet-5's parameter count
print(f"wheel smoke: jcnn {jcnn.__version__} from {where.parent}: init/apply/train ok (loss {first:.3f} -> {float(loss):.3f})")
EOF
"$work/venv/bin/jcnn" --help >/dev/null
echo "wheel smoke: ok (build ${t_build}s, install ${t_install}s, smoke $((SECONDS - t0))s)"
