"""A fully connected classifier (docs/fully_connected.md), ``y = f(W·x + b)``, on the 8×8 digits.

Flatten (64) → Dense 64 → ReLU → Dense 10, trained with ``jcnn.training.train.fit`` (softmax cross-entropy,
SGD with momentum). The figure shows the loss/accuracy curves, the first layer's weights as 8×8
images (each hidden unit's template) and the test confusion matrix.
Run: ``python examples/fully_connected.py [--out DIR] [--quick]``; writes ``fc_curves.png``,
``fc_weights.png``, ``fc_confusion.png``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

import numpy as np
from _util import figure, parse_args, save

import jcnn
from jcnn import optim
from jcnn.training import plots
from jcnn.training.train import fit, predict


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args("fully_connected", __doc__.splitlines()[0], argv)
    ds = jcnn.data.load_digits()
    model = jcnn.serial(jcnn.Flatten, ("hidden", jcnn.Dense(64)), jcnn.Relu, ("out", jcnn.Dense(10)))
    epochs = 3 if args.quick else 30
    result = fit(
        model,
        optim.sgd(0.05, momentum=0.9),
        (ds.train_images, ds.train_labels),
        (ds.test_images, ds.test_labels),
        epochs=epochs,
        batch_size=32,
        seed=0,
        progress=False,
    )
    accuracy = result.history[-1]["test_accuracy"]
    print(f"fully connected 64-64-10 on digits: test accuracy {accuracy:.4f} after {epochs} epochs")
    if not args.quick:
        assert accuracy > 0.95, accuracy

    plots.plot_history(result.history, f"{args.out}/fc_curves.png", title="Flatten → Dense 64 → ReLU → Dense 10")
    kernel = np.asarray(result.state.params["hidden"]["kernel"])  # (64 inputs, 64 hidden units)
    fig = figure(8, 8.4)
    axes = fig.subplots(8, 8)
    bound = np.abs(kernel).max()
    for unit, ax in enumerate(axes.ravel()):
        ax.imshow(kernel[:, unit].reshape(8, 8), cmap="bwr", vmin=-bound, vmax=bound)
        ax.set_axis_off()
    fig.suptitle("W of the first Dense layer: the 8×8 template of each hidden unit (blue −, red +)")
    save(fig, args.out, "fc_weights.png")
    logits = predict(model, result.state.params, result.state.state, ds.test_images)
    cm = plots.confusion_matrix(ds.test_labels, logits, ds.num_classes)
    plots.plot_confusion_matrix(cm, f"{args.out}/fc_confusion.png", title="fully connected, digits test")
    return 0


if __name__ == "__main__":
    sys.exit(main())
