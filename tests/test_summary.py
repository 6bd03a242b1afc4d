"""summary(): one row per layer (nested children indented), output shapes, counts and totals."""

from __future__ import annotations

import math

import jax
import pytest

import jcnn
from jcnn.layers import BatchNorm, Conv, Dense, Dropout, Flatten, MaxPool, Relu, concat, fan_out, parallel, residual, serial


def _n(tree) -> int:
    return sum(math.prod(a.shape) for a in jax.tree_util.tree_leaves(tree))


def test_rows_shapes_counts_and_totals():
    model = serial(
        Conv(8, 3, padding=1), BatchNorm(), Relu,
        ("block", residual(serial(Conv(8, 3, padding=1), Relu))),
        MaxPool(2), Flatten, Dropout(0.5), ("head", Dense(10)),
    )
    printed = []
    text = jcnn.summary(model, (-1, 8, 8, 3), print_fn=printed.append)
    assert printed == [text]
    _, params, state = model.init(jax.random.PRNGKey(0), (2, 8, 8, 3))
    lines = text.splitlines()
    rows = {}
    for line in lines[2:]:
        rows.setdefault(line.split()[0], line)  # the first (outermost) row of each name
    assert lines[0].split() == ["Layer", "Kind", "Output", "shape", "Params", "State"]
    # the root row, then each child indented by two spaces per level, named by its child name
    assert lines[2].startswith("model ") and f"{_n(params):,}" in lines[2]
    assert any(line.startswith("  conv_0 ") for line in lines)
    assert any(line.startswith("      conv_0 ") for line in lines)  # block/block/conv_0
    assert any(line.startswith("    shortcut ") and "identity" in line for line in lines)
    assert "(N, 8, 8, 8)" in rows["conv_0"] and rows["conv_0"].split()[-2] == f"{8 * 27 + 8:,}"
    assert rows["batch_norm_1"].split()[-1] == "16" and rows["batch_norm_1"].split()[-2] == "16"
    assert "(N, 128)" in rows["flatten_5"] and "(N, 10)" in rows["head"]
    assert rows["head"].split()[-2] == f"{128 * 10 + 10:,}"
    assert f"Trainable params: {_n(params):,}" in text
    assert f"State (non-trainable): {_n(state):,}" in text
    assert "Input shape: (N, 8, 8, 3)" in text


def test_tuple_wiring_and_no_printing(capsys):
    model = serial(fan_out(2), parallel(Dense(4), ("skip", Relu)), concat())
    text = jcnn.summary(model, (2, 3), print_fn=None)
    assert capsys.readouterr().out == ""
    assert "((2, 3), (2, 3))" in text and "((2, 4), (2, 3))" in text and "(2, 7)" in text
    assert any(line.startswith("    skip ") for line in text.splitlines())
    jcnn.summary(Dense(2), (1, 3))
    assert "dense" in capsys.readouterr().out


def test_large_model_is_cheap_and_non_layer_is_an_error():
    # ~100M params would take seconds to materialise; eval_shape only traces
    big = serial(Conv(512, 3, padding=1), Flatten, Dense(4096), Dense(4096))
    text = jcnn.summary(big, (1, 7, 7, 3), print_fn=None)
    expected = 512 * 27 + 512 + 7 * 7 * 512 * 4096 + 4096 + 4096 * 4096 + 4096
    assert f"Trainable params: {expected:,}" in text
    with pytest.raises(TypeError, match="summary: expected a jcnn Layer, got function"):
        jcnn.summary(Dense, (1, 3))


def test_an_init_that_needs_concrete_values_falls_back_to_a_real_init():
    import numpy as np

    from jcnn.layers import make_layer

    def init(key, shape):
        w = jax.random.normal(key, (shape[-1], 2))
        np.asarray(w)  # fails under eval_shape tracing
        return shape[:-1] + (2,), {"w": w}, {}

    def apply(params, state, x, *, train, key=None):
        return x @ params["w"], state

    text = jcnn.summary(serial(make_layer("numpy_init", init, apply)), (4, 3), print_fn=None)
    assert "numpy_init" in text and "Trainable params: 6 " in text


def test_unknown_wiring_is_guessed_and_checked_against_the_params():
    from jcnn.layers import make_layer

    conv1, conv2, proj, odd = Conv(8, 3, stride=2, padding=1), Conv(8, 3, padding=1), Conv(8, 1, stride=2), Dense(2)

    def init(key, shape):
        k1, k2, k3, k4 = jax.random.split(key, 4)
        o1, p1, s1 = conv1.init(k1, shape)
        o2, p2, s2 = conv2.init(k2, o1)
        _, p3, s3 = proj.init(k3, shape)  # a shortcut: fed the block's input
        _, p4, s4 = odd.init(k4, (1, 5))  # fed something summary cannot guess
        return o2, {"conv1": p1, "conv2": p2, "proj": p3, "odd": p4}, {"conv1": s1, "conv2": s2, "proj": s3, "odd": s4}

    block = make_layer("my_block", init, lambda p, s, x, *, train, key=None: (x, s),
                       children=(("conv1", conv1), ("conv2", conv2), ("proj", proj), ("odd", odd)))
    rows = {line.split()[0]: line.split() for line in jcnn.summary(block, (1, 8, 8, 3), print_fn=None).splitlines()[3:7]}
    assert rows["conv1"][2:] == ["(1,", "4,", "4,", "8)", "224", "0"]
    assert rows["conv2"][2:] == ["(1,", "4,", "4,", "8)", "584", "0"]
    assert rows["proj"][2:] == ["(1,", "4,", "4,", "8)", "32", "0"]
    assert rows["odd"][2:] == ["?", "12", "0"]
