"""The activation functions ReLU, Leaky ReLU, Sigmoid and Tanh and their derivatives (docs/activations.md).

    ReLU  f(x) = max(0, x)        Leaky ReLU  f(x) = max(αx, x)
    Sigmoid  f(x) = 1/(1 + e^−x)  Tanh  f(x) = (e^x − e^−x)/(e^x + e^−x)

Derivatives come from ``jax.grad`` of the ``jcnn.ops`` functions.
Run: ``python examples/activations.py [--out DIR] [--quick]``; writes ``activations.png``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
from _util import figure, parse_args, save

import jcnn

FUNCTIONS = {
    "ReLU": jcnn.ops.relu,
    "Leaky ReLU (α = 0.1)": partial(jcnn.ops.leaky_relu, negative_slope=0.1),
    "Sigmoid": jcnn.ops.sigmoid,
    "Tanh": jcnn.ops.tanh,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args("activations", __doc__.splitlines()[0], argv)
    x = jnp.linspace(-5.0, 5.0, 101 if args.quick else 1001, dtype=jnp.float32)
    fig = figure(11, 4.5)
    ax_f, ax_d = fig.subplots(1, 2)
    for name, f in FUNCTIONS.items():
        y = f(x)
        dy = jax.vmap(jax.grad(lambda v, f=f: f(v)))(x)
        style = "--" if name.startswith("Leaky") else "-"
        ax_f.plot(x, y, style, label=name)
        ax_d.plot(x, dy, style, label=name)
    xs = np.asarray(x, dtype=np.float64)
    # The textbook formulas, checked against jcnn.ops.
    assert np.allclose(FUNCTIONS["Sigmoid"](x), 1 / (1 + np.exp(-xs)), atol=1e-6)
    assert np.allclose(FUNCTIONS["Tanh"](x), np.tanh(xs), atol=1e-6)
    assert np.allclose(FUNCTIONS["ReLU"](x), np.maximum(0, xs))
    assert np.allclose(FUNCTIONS["Leaky ReLU (α = 0.1)"](x), np.maximum(0.1 * xs, xs), atol=1e-6)
    for ax, title in ((ax_f, "f(x)"), (ax_d, "f′(x) (jax.grad)")):
        ax.axhline(0, color="k", lw=0.5)
        ax.axvline(0, color="k", lw=0.5)
        ax.set_xlabel("x")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    ax_f.set_ylim(-1.5, 3)
    fig.suptitle("Activation functions: sigmoid and tanh saturate, ReLU's gradient is 0 or 1")
    save(fig, args.out, "activations.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
