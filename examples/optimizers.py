"""The five optimizers (docs/optimizers.md) SGD, Momentum, AdaGrad, RMSprop and Adam racing on the same problems.

1. The 2-D bowl ``f(x, y) = x²/20 + y²`` from ``(−7, 2)``: steep in y, flat in x, so plain SGD zigzags.
2. A small CNN on the 8×8 digits: same initial weights, same mini-batches, one loss curve each.

Every optimizer is ``jcnn.optim``'s (torch.optim's update rules). Run:
``python examples/optimizers.py [--out DIR] [--quick]``; writes ``optimizers.png``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import jax
import jax.numpy as jnp
import numpy as np
from _util import figure, parse_args, save

import jcnn
from jcnn import losses, optim
from jcnn.data import batches
from jcnn.training.train import init_train_state, make_train_step

# Learning rates for the bowl (as in the classic comparison) and for the CNN.
BOWL = {
    "SGD": optim.sgd(0.95),
    "Momentum": optim.sgd(0.1, momentum=0.9),
    "AdaGrad": optim.adagrad(1.5),
    "RMSprop": optim.rmsprop(0.1),
    "Adam": optim.adam(0.3),
}
CNN = {
    "SGD": optim.sgd(0.1),
    "Momentum": optim.sgd(0.02, momentum=0.9),
    "AdaGrad": optim.adagrad(0.05),
    "RMSprop": optim.rmsprop(2e-3),
    "Adam": optim.adam(5e-3),
}


def bowl(p: jax.Array) -> jax.Array:
    return p[0] ** 2 / 20.0 + p[1] ** 2


def race_on_bowl(opt: optim.Optimizer, steps: int) -> np.ndarray:
    """The path ``(steps + 1, 2)`` of ``opt`` minimising :func:`bowl` from ``(−7, 2)``, in one ``lax.scan``."""

    def step(carry, _):
        p, state = carry
        updates, state = opt.update(jax.grad(bowl)(p), state, p)
        p = optim.apply_updates(p, updates)
        return (p, state), p

    p0 = jnp.array([-7.0, 2.0], jnp.float32)
    _, path = jax.jit(lambda p: jax.lax.scan(step, (p, opt.init(p)), None, length=steps))(p0)
    return np.concatenate([np.asarray(p0)[None], np.asarray(path)])


MODEL = jcnn.serial(jcnn.Conv(8, 3, padding=1), jcnn.Relu, jcnn.MaxPool(2), jcnn.Flatten, jcnn.Dense(10))


def race_on_digits(opt: optim.Optimizer, steps: int, images: np.ndarray, labels: np.ndarray) -> list[float]:
    """Training losses of a small CNN over ``steps`` mini-batches of 32 (seeded: the same initial weights
    and batches for every optimizer)."""
    ts = init_train_state(MODEL, opt, (-1, 8, 8, 1), seed=0)
    train_step = make_train_step(MODEL, losses.softmax_cross_entropy, opt)
    curve, epoch = [], 0
    while len(curve) < steps:
        for x, y in batches(images, labels, 32, seed=0, epoch=epoch, drop_last=True):
            ts, metrics = train_step(ts, jnp.asarray(x), jnp.asarray(y))
            curve.append(float(metrics["loss"]))
            if len(curve) == steps:
                break
        epoch += 1
    return curve


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args("optimizers", __doc__.splitlines()[0], argv)
    bowl_steps, cnn_steps = (15, 40) if args.quick else (30, 300)
    ds = jcnn.data.load_digits()
    fig = figure(13, 5)
    ax_path, ax_loss = fig.subplots(1, 2)
    xs, ys = np.meshgrid(np.linspace(-8, 8, 200), np.linspace(-3, 3, 200))
    ax_path.contour(xs, ys, xs**2 / 20 + ys**2, levels=np.geomspace(0.05, 8, 12), colors="0.8")
    for name in BOWL:
        path = race_on_bowl(BOWL[name], bowl_steps)
        final = float(bowl(jnp.asarray(path[-1])))
        ax_path.plot(path[:, 0], path[:, 1], "o-", ms=2.5, lw=1, label=f"{name}: f = {final:.2g}")
        curve = race_on_digits(CNN[name], cnn_steps, ds.train_images, ds.train_labels)
        print(
            f"{name:8s} bowl f after {bowl_steps} steps {final:.3g}; "
            f"CNN loss mean of the last 10 steps {np.mean(curve[-10:]):.4f}"
        )
        assert np.all(np.isfinite(curve)) and np.mean(curve[-5:]) < curve[0]
        ax_loss.plot(np.arange(1, len(curve) + 1), curve, lw=1, label=name)
    ax_path.plot(0, 0, "k+", ms=12)
    ax_path.set_title(f"f(x, y) = x²/20 + y², {bowl_steps} steps from (−7, 2)")
    ax_path.set_xlim(-8, 8)
    ax_path.set_ylim(-3, 3)
    ax_path.legend(fontsize=8)
    ax_loss.set_yscale("log")
    ax_loss.set_xlabel("step (mini-batch of 32)")
    ax_loss.set_ylabel("training loss")
    ax_loss.set_title("small CNN on the 8×8 digits: same init, same batches")
    ax_loss.grid(alpha=0.3)
    ax_loss.legend()
    fig.suptitle("Five optimizers of jcnn.optim racing")
    save(fig, args.out, "optimizers.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
