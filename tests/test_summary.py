"""summary(): one row per layer (nested children indented), output shapes, counts, MACs and totals, from the
declared tree; MACs against torchvision's published figures and XLA's cost analysis."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import jcnn
from jcnn.layers import (
    BatchNorm,
    Conv,
    ConvTranspose,
    Dense,
    Dropout,
    Flatten,
    MaxPool,
    Relu,
    apply_child,
    concat,
    fan_out,
    init_child,
    make_layer,
    parallel,
    residual,
    serial,
)


def _n(tree) -> int:
    return sum(math.prod(a.shape) for a in jax.tree_util.tree_leaves(tree))


def _rows(result) -> dict:
    return {r.path: r for r in result.rows}


def test_rows_shapes_counts_macs_and_totals():
    model = serial(
        Conv(8, 3, padding=1),
        BatchNorm(),
        Relu,
        ("block", residual(serial(Conv(8, 3, padding=1), Relu))),
        MaxPool(2),
        Flatten,
        Dropout(0.5),
        ("head", Dense(10)),
    )
    result = jcnn.summary(model, (-1, 8, 8, 3))
    text = str(result)
    assert repr(result) == text  # a REPL shows the table once
    _, params, state = model.init(jax.random.PRNGKey(0), (2, 8, 8, 3))
    rows = _rows(result)
    lines = text.splitlines()
    assert lines[0].split() == ["Layer", "Kind", "Output", "shape", "Params", "State", "MACs", "Activations"]
    assert lines[2].startswith("model ") and f"{_n(params):,}" in lines[2]
    assert any(line.startswith("  conv_0 ") for line in lines)
    assert any(line.startswith("      conv_0 ") for line in lines)  # block/block/conv_0
    assert any(line.startswith("    shortcut ") and "Identity" in line for line in lines)
    assert rows["conv_0"].output_shape == (-1, 8, 8, 8) and rows["conv_0"].params == 8 * 27 + 8
    assert rows["conv_0"].macs == 64 * 27 * 8 and rows["block.block.conv_0"].macs == 64 * 72 * 8
    assert rows["block"].macs == rows["block.block.conv_0"].macs and rows["batch_norm_1"].macs == 0
    assert rows["batch_norm_1"].state == 16 and rows["batch_norm_1"].params == 16
    assert rows["flatten_5"].output_shape == (-1, 128) and rows["head"].output_shape == (-1, 10)
    assert rows["head"].params == 128 * 10 + 10 and rows["head"].macs == 1280
    assert result.macs == 64 * 27 * 8 + 64 * 72 * 8 + 1280 == rows[""].macs
    assert result.params == _n(params) and result.state == _n(state)
    assert f"Trainable params: {_n(params):,}" in text and f"State (non-trainable): {_n(state):,}" in text
    assert f"MACs: {result.macs:,}" in text and "Input shape: (N, 8, 8, 3)" in text


def test_print_fn_prints_and_returns_nothing(capsys):
    model = serial(fan_out(2), parallel(Dense(4), ("skip", Relu)), concat())
    printed = []
    assert jcnn.summary(model, (2, 3), print_fn=printed.append) is None
    text = printed[0]
    assert capsys.readouterr().out == ""
    assert "((2, 3), (2, 3))" in text and "((2, 4), (2, 3))" in text and "(2, 7)" in text
    assert any(line.startswith("    skip ") for line in text.splitlines())
    jcnn.summary(Dense(2), (1, 3), print_fn=print)
    assert "Dense" in capsys.readouterr().out


def test_large_model_is_cheap_and_non_layer_is_an_error():
    # ~100M params would take seconds to materialise; only the shape rules and an abstract init run
    big = serial(Conv(512, 3, padding=1), Flatten, Dense(4096), Dense(4096))
    result = jcnn.summary(big, (1, 7, 7, 3))
    assert result.params == 512 * 27 + 512 + 7 * 7 * 512 * 4096 + 4096 + 4096 * 4096 + 4096
    with pytest.raises(TypeError, match="summary: expected a jcnn Layer, got function"):
        jcnn.summary(Dense, (1, 3))


def test_an_init_that_needs_concrete_values_falls_back_to_a_real_init():
    def init(key, shape):
        w = jax.random.normal(key, (shape[-1], 2))
        np.asarray(w)  # fails under eval_shape tracing
        return shape[:-1] + (2,), {"w": w}, {}

    def apply(params, state, x, *, train, key=None):
        return x @ params["w"], state

    result = jcnn.summary(serial(("mine", make_layer("numpy_init", init, apply))), (4, 3))
    assert _rows(result)["mine"].kind == "numpy_init" and result.params == 6
    assert _rows(result)["mine"].macs is None and result.unknown_macs == ["mine"]  # no rule: "?"
    assert "? for 1 layers without a MAC rule" in str(result)


def test_a_combinator_without_declared_wiring_is_traced_once_for_its_childrens_shapes():
    conv1, conv2, proj, unused = Conv(8, 3, stride=2, padding=1), Conv(8, 3, padding=1), Conv(8, 1, stride=2), Dense(2)
    children = (("conv1", conv1), ("conv2", conv2), ("proj", proj), ("unused", unused))

    def init(key, shape):
        k1, k2, k3, k4 = jax.random.split(key, 4)
        o1, p1, s1 = init_child("conv1", conv1, k1, shape)
        o2, p2, s2 = init_child("conv2", conv2, k2, o1)
        _, p3, s3 = init_child("proj", proj, k3, shape)
        _, p4, s4 = init_child("unused", unused, k4, (1, 5))
        return (
            o2,
            {"conv1": p1, "conv2": p2, "proj": p3, "unused": p4},
            {"conv1": s1, "conv2": s2, "proj": s3, "unused": s4},
        )

    def apply(params, state, x, *, train, key=None):
        h, _ = apply_child("conv1", conv1, params["conv1"], {}, x, train=train)
        h, _ = apply_child("conv2", conv2, params["conv2"], {}, h, train=train)
        s, _ = apply_child("proj", proj, params["proj"], {}, x, train=train)
        return h + s, state

    block = make_layer("my_block", init, apply, children=children)
    rows = _rows(jcnn.summary(block, (1, 8, 8, 3)))
    assert rows["conv1"].output_shape == rows["conv2"].output_shape == rows["proj"].output_shape == (1, 4, 4, 8)
    assert (rows["conv1"].params, rows["conv2"].params, rows["proj"].params) == (224, 584, 32)
    assert rows["unused"].output_shape is None and rows["unused"].params == 12  # never called: shape unknown
    assert rows["conv2"].macs == 16 * 72 * 8


@pytest.mark.parametrize(
    "name, published", [("resnet18", 1.81e9), ("resnet50", 4.09e9), ("mobilenet_v2", 0.30e9), ("vgg16", 15.47e9)]
)
def test_zoo_macs_at_224_match_torchvisions_published_figures(name, published):
    # torchvision's weight metadata calls these "GFLOPS"; they are multiply-accumulates per image
    result = jcnn.summary(jcnn.models.get_model(name), (-1, 224, 224, 3))
    assert abs(result.macs / published - 1) <= 0.02, (name, result.macs)


def _conv_dense_model():
    # No padding: XLA leaves out the taps that fall on padding (and on a transposed conv's dilation holes),
    # where the MAC convention (torchvision's, fvcore's) counts every tap. ConvTranspose is checked below.
    return serial(
        Conv(6, (3, 3), stride=2, use_bias=False, algorithm="xla"),
        Relu,
        Conv(4, (2, 2), groups=2, use_bias=False, algorithm="xla"),
        Flatten,
        Dense(5, use_bias=False),
    )


def test_macs_equal_half_of_xlas_flop_count_for_convs_and_dense_layers():
    model = _conv_dense_model()
    shape = (3, 9, 9, 2)
    _, params, state = model.init(jax.random.PRNGKey(0), shape)
    compiled = (
        jax.jit(lambda p, x: model.apply(p, state, x, train=False)[0])
        .lower(params, jnp.zeros(shape, jnp.float32))
        .compile()
    )
    analysis = compiled.cost_analysis()
    flops = (analysis[0] if isinstance(analysis, (list, tuple)) else analysis)["flops"]
    macs = jcnn.summary(model, shape).macs
    relu = 2 * 3 * 4 * 4 * 6  # XLA also counts two flops per ReLU element
    assert macs == 3 * 16 * 9 * 2 * 6 + 3 * 9 * 4 * 3 * 4 + 3 * 36 * 5
    assert abs(flops - relu - 2 * macs) <= 0.01 * 2 * macs, (flops, macs)


def test_conv_transpose_macs_count_each_input_pixel_times_each_tap():
    # every input pixel meets every kernel tap once: N·prod(I)·prod(K)·C_in·C_out/groups, whatever the stride
    for stride in (1, 2, 3):
        layer = ConvTranspose(6, (2, 3), stride=stride, groups=2)
        assert jcnn.summary(layer, (2, 4, 5, 4)).macs == 2 * 20 * 6 * 4 * 3
