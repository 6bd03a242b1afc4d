"""jcnn.training.plots: every figure is a real PNG of the expected size, the first conv layer is found and run
exactly, and the confusion matrix equals scikit-learn's."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jcnn
from jcnn.training import plots

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def _png_shape(path) -> tuple[int, ...]:
    from matplotlib.image import imread

    with open(path, "rb") as f:
        assert f.read(8) == PNG_MAGIC, f"{path} is not a PNG"
    return imread(path).shape


HISTORY = [
    {
        "epoch": e,
        "train_loss": 2.0 / e,
        "test_loss": 2.2 / e,
        "train_accuracy": 1 - 0.5 / e,
        "test_accuracy": 1 - 0.6 / e,
    }
    for e in range(1, 6)
]


def test_plot_history_writes_a_png(tmp_path):
    path = plots.plot_history(HISTORY, tmp_path / "sub" / "curves.png", title="t")
    assert path == str(tmp_path / "sub" / "curves.png")
    assert _png_shape(path)[:2] == (400, 1000)  # figsize (10, 4) at 100 dpi
    # Without test metrics it still draws the train curves.
    train_only = [{k: v for k, v in r.items() if not k.startswith("test")} for r in HISTORY]
    assert _png_shape(plots.plot_history(train_only, tmp_path / "t.png"))[:2] == (400, 1000)
    with pytest.raises(ValueError, match="plot_history: the history is empty"):
        plots.plot_history([], tmp_path / "x.png")


def test_first_conv_kernel_follows_layer_order():
    k1, k2 = np.ones((3, 3, 1, 2)), np.zeros((5, 5, 2, 4))
    # "z" was built first: dict insertion order is the layer order, not the sorted key order.
    params = {"z": {"kernel": k1, "bias": np.zeros(2)}, "a": {"kernel": k2}, "dense": {"kernel": np.ones((4, 2))}}
    path, kernel = plots.first_conv_kernel(params)
    assert path == "z/kernel" and kernel.shape == (3, 3, 1, 2)
    nested = {"head": {"kernel": np.ones((8, 2))}, "blocks": [{"conv": {"kernel": k2}}]}
    assert plots.first_conv_kernel(nested)[0] == "blocks/0/conv/kernel"
    with pytest.raises(ValueError, match="first_conv_kernel: the params hold no conv kernel"):
        plots.first_conv_kernel({"dense": {"kernel": np.ones((4, 2))}})


@pytest.mark.parametrize("c_in", [1, 3, 5])
def test_plot_filters(tmp_path, c_in):
    kernel = np.random.default_rng(0).normal(size=(5, 5, c_in, 6))
    height, width = _png_shape(plots.plot_filters(kernel, tmp_path / "f.png"))[:2]
    assert (height, width) == (320, 440)  # 6 filters: a 2x3 grid of 1.3-inch panels plus margins, 100 dpi
    with pytest.raises(ValueError, match=r"plot_filters: expected a 2-D conv kernel .* got shape \(3, 3, 4\)"):
        plots.plot_filters(np.ones((3, 3, 4)), tmp_path / "g.png")


def test_first_conv_output_is_the_first_conv_layers_output():
    model = jcnn.serial(
        jcnn.Tanh,
        ("conv", jcnn.Conv(3, 3, stride=2, padding=1)),
        jcnn.Relu,
        ("conv2", jcnn.Conv(2, 3)),
        jcnn.Flatten,
        jcnn.Dense(4),
    )
    _, params, state = model.init(jax.random.PRNGKey(0), (-1, 9, 9, 2))
    x = jnp.asarray(np.random.default_rng(1).normal(size=(2, 9, 9, 2)), jnp.float32)
    got = plots.first_conv_output(model, params, state, x)
    want = jcnn.ops.conv(jnp.tanh(x), params["conv"]["kernel"], params["conv"]["bias"], stride=2, padding=1)
    assert got.shape == (2, 5, 5, 3)
    np.testing.assert_allclose(got, np.asarray(want), rtol=1e-6, atol=1e-6)


def test_first_conv_output_of_lenet5_for_a_batch_that_lowers_its_conv_by_fft():
    # conv(algorithm="auto") computes LeNet's 5x5 convs by FFT from a batch of 8: no conv primitive to find
    model = jcnn.models.lenet5()
    _, params, state = model.init(jax.random.PRNGKey(0), (-1, 32, 32, 1))
    x = jnp.asarray(np.random.default_rng(2).normal(size=(8, 32, 32, 1)), jnp.float32)
    got = plots.first_conv_output(model, params, state, x)
    first = params["features"]["0"]
    want = jcnn.ops.conv(x, first["kernel"], first["bias"], algorithm="xla")
    np.testing.assert_allclose(got, np.asarray(want), rtol=1e-5, atol=1e-5)


def test_first_conv_output_through_remat():
    model = jcnn.serial(
        ("block", jcnn.remat(jcnn.serial(("conv", jcnn.Conv(3, 3)), jcnn.Relu))), jcnn.Flatten, jcnn.Dense(2)
    )
    _, params, state = model.init(jax.random.PRNGKey(0), (-1, 6, 6, 1))
    x = jnp.asarray(np.random.default_rng(4).normal(size=(1, 6, 6, 1)), jnp.float32)
    got = plots.first_conv_output(model, params, state, x)
    want = jcnn.ops.conv(x, params["block"]["conv"]["kernel"], params["block"]["conv"]["bias"])
    np.testing.assert_allclose(got, np.asarray(want), rtol=1e-6, atol=1e-6)


def test_first_conv_output_without_conv_raises():
    model = jcnn.serial(jcnn.Flatten, jcnn.Dense(3))
    _, params, state = model.init(jax.random.PRNGKey(0), (-1, 4, 4, 1))
    with pytest.raises(
        ValueError,
        match=r"first_conv_output: the model has no Conv layer \(its layers: "
        r"\['Dense', 'Flatten', 'serial'\]\)",
    ):
        plots.first_conv_output(model, params, state, jnp.ones((1, 4, 4, 1)))


def test_plot_feature_maps(tmp_path):
    rng = np.random.default_rng(0)
    path = plots.plot_feature_maps(rng.random((32, 32, 1)), rng.normal(size=(28, 28, 6)), tmp_path / "m.png")
    height, width = _png_shape(path)[:2]
    assert (height, width) == (510, 500)  # 7 panels: a 3x3 grid of 1.5-inch panels plus margins
    # RGB input and a constant map (normalised to mid-grey, no division by zero).
    maps = np.concatenate([np.zeros((8, 8, 1)), rng.normal(size=(8, 8, 2))], axis=-1)
    plots.plot_feature_maps(rng.random((16, 16, 3)), maps, tmp_path / "rgb.png")
    with pytest.raises(ValueError, match=r"plot_feature_maps: expected image \(H, W, C\) and maps \(h, w, K\)"):
        plots.plot_feature_maps(np.ones((1, 8, 8, 1)), maps, tmp_path / "x.png")


def test_confusion_matrix_matches_sklearn():
    from sklearn.metrics import confusion_matrix as sk_confusion_matrix

    rng = np.random.default_rng(0)
    labels = rng.integers(0, 5, 200)
    logits = rng.normal(size=(200, 5))
    want = sk_confusion_matrix(labels, logits.argmax(-1), labels=range(5))
    np.testing.assert_array_equal(plots.confusion_matrix(labels, logits, 5), want)
    np.testing.assert_array_equal(plots.confusion_matrix(labels, logits.argmax(-1), 5), want)
    assert plots.confusion_matrix(labels, logits, 5).sum() == 200
    with pytest.raises(ValueError, match=r"confusion_matrix: expected labels \(N,\) and predictions"):
        plots.confusion_matrix(labels[:10], logits, 5)
    with pytest.raises(ValueError, match=r"confusion_matrix: labels must lie in \[0, 5\), got range \[0, 7\]"):
        plots.confusion_matrix(np.array([0, 7]), np.array([0, 1]), 5)
    with pytest.raises(ValueError, match=r"confusion_matrix: predictions must lie in \[0, 3\)"):
        plots.confusion_matrix(np.array([0, 1]), np.array([0, 4]), 3)


def test_plot_confusion_matrix(tmp_path):
    cm = np.diag([5, 6, 7]) + 1
    height, width = _png_shape(plots.plot_confusion_matrix(cm, tmp_path / "cm.png", class_names="abc"))[:2]
    assert (height, width) == (400, 500)
    names = ["T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Boot"]
    plots.plot_confusion_matrix(np.eye(10, dtype=int) * 3, tmp_path / "fashion.png", class_names=names)
    with pytest.raises(ValueError, match=r"plot_confusion_matrix: expected a square matrix, got shape \(2, 3\)"):
        plots.plot_confusion_matrix(np.ones((2, 3)), tmp_path / "x.png")
    with pytest.raises(ValueError, match="plot_confusion_matrix: got 2 class names for 3 classes"):
        plots.plot_confusion_matrix(cm, tmp_path / "x.png", class_names=["a", "b"])
