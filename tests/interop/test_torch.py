"""jcnn.interop.torch: every layer type's state_dict both ways, the flatten reorder before dense layers,
num_batches_tracked, and every error."""

import jax.numpy as jnp
import numpy as np
import pytest
import torch
from torch import nn

import jcnn
from jcnn.interop.torch import export_state_dict, import_state_dict, torch_shapes
from jcnn.layers.base import make_layer
from tests.helpers import assert_close, from_torch_layout, to_torch_layout
from tests.models._twins import twin

# (jcnn layer, torch module, jcnn input shape, channels-last input?)
LAYERS = {
    "conv1d": (lambda: jcnn.Conv(4, (3,), stride=2), lambda: nn.Conv1d(3, 4, 3, 2), (2, 9, 3), True),
    "conv2d": (
        lambda: jcnn.Conv(6, (3, 2), groups=3, use_bias=False),
        lambda: nn.Conv2d(3, 6, (3, 2), groups=3, bias=False),
        (2, 6, 5, 3),
        True,
    ),
    "conv3d": (
        lambda: jcnn.Conv(2, 3, padding=1, spatial_dims=3),
        lambda: nn.Conv3d(3, 2, 3, padding=1),
        (1, 4, 5, 3, 3),
        True,
    ),
    "conv_transpose2d": (
        lambda: jcnn.ConvTranspose(4, 3, stride=2, groups=2),
        lambda: nn.ConvTranspose2d(2, 4, 3, 2, groups=2),
        (2, 4, 4, 2),
        True,
    ),
    "dense": (lambda: jcnn.Dense(5), lambda: nn.Linear(7, 5), (3, 7), False),
    "batch_norm": (lambda: jcnn.BatchNorm(), lambda: nn.BatchNorm2d(3), (4, 3, 3, 3), True),
    "layer_norm": (lambda: jcnn.LayerNorm(), lambda: nn.LayerNorm([3, 4, 5]), (2, 4, 5, 3), True),
    "group_norm": (lambda: jcnn.GroupNorm(2), lambda: nn.GroupNorm(2, 4), (2, 3, 3, 4), True),
    "instance_norm": (
        lambda: jcnn.InstanceNorm(affine=True, track_running_stats=True),
        lambda: nn.InstanceNorm2d(3, affine=True, track_running_stats=True),
        (2, 4, 4, 3),
        True,
    ),
    "prelu": (lambda: jcnn.PRelu(3), lambda: nn.PReLU(3), (2, 4, 4, 3), True),
}


def _randomize(module: nn.Module) -> dict:
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if t.dtype.is_floating_point:
                t.copy_(torch.rand(t.shape, generator=g) + 0.5 if "var" in name else torch.randn(t.shape, generator=g))
    return module.state_dict()


def _run(layer, module, params, state, x, channels_last):
    y, _ = layer.apply(params, state, jnp.asarray(x), train=False)
    module.eval()
    with torch.no_grad():
        if channels_last:
            return np.asarray(y), from_torch_layout(module(to_torch_layout(x)))
        return np.asarray(y), module(torch.from_numpy(x)).numpy()


@pytest.mark.parametrize("name", sorted(LAYERS))
def test_layer_state_dict_both_ways(name, rng):
    make_layer_fn, make_module, shape, channels_last = LAYERS[name]
    layer, module = make_layer_fn(), make_module()
    sd = {k: v.clone() for k, v in _randomize(module).items()}
    params, state = import_state_dict(layer, sd, input_shape=shape)
    x = rng.standard_normal(shape).astype(np.float32)
    assert_close(*_run(layer, module, params, state, x, channels_last), what=name)
    exported = export_state_dict(layer, params, state, input_shape=shape)
    assert set(exported) == set(sd)
    for key, value in sd.items():
        if key != "num_batches_tracked":
            assert exported[key].dtype == np.float32 and np.array_equal(exported[key], value.numpy()), key
    module.load_state_dict({k: torch.from_numpy(v) for k, v in exported.items()}, strict=True)


def test_flatten_before_dense_is_reordered(rng):
    """A jcnn flatten is (H, W, C)-ordered, torch's (C, H, W): the first dense layer after it, and a
    per-feature BatchNorm in between, are permuted; layers after the first dense are not."""
    model = jcnn.serial(
        ("0", jcnn.Conv(3, 3)),
        ("1", jcnn.Flatten),
        ("2", jcnn.Relu),
        ("3", jcnn.BatchNorm()),
        ("4", jcnn.Dropout(0.5)),
        ("5", jcnn.serial(("0", jcnn.Dense(6)), ("1", jcnn.Dense(4)))),
    )
    module = nn.Sequential(
        nn.Conv2d(2, 3, 3),
        nn.Flatten(),
        nn.ReLU(),
        nn.BatchNorm1d(48),
        nn.Dropout(0.5),
        nn.Sequential(nn.Linear(48, 6), nn.Linear(6, 4)),
    )
    sd = _randomize(module)
    assert set(torch_shapes(model, input_shape=(1, 6, 6, 2))) == set(sd)
    params, state = import_state_dict(model, sd, input_shape=(1, 6, 6, 2))
    x = rng.standard_normal((2, 6, 6, 2)).astype(np.float32)
    y, _ = model.apply(params, state, jnp.asarray(x), train=False)
    module.eval()
    with torch.no_grad():
        assert_close(y, module(to_torch_layout(x)).numpy(), what="conv-flatten-dense")
    back = export_state_dict(model, params, state, input_shape=(1, 6, 6, 2))
    for key, value in sd.items():
        if "num_batches" not in key:
            assert np.array_equal(back[key], value.numpy()), key


def test_conv_transpose_inside_a_combinator_is_recognized(rng):
    model = jcnn.serial(("up", jcnn.ConvTranspose(3, 2, stride=2)), ("conv", jcnn.Conv(2, 3)))
    module = nn.Module()
    module.up, module.conv = nn.ConvTranspose2d(4, 3, 2, 2), nn.Conv2d(3, 2, 3)
    params, state = import_state_dict(model, _randomize(module), input_shape=(1, 4, 4, 4))
    assert params["up"]["kernel"].shape == (2, 2, 4, 3) and params["conv"]["kernel"].shape == (3, 3, 3, 2)
    x = rng.standard_normal((2, 4, 4, 4)).astype(np.float32)
    y, _ = model.apply(params, state, jnp.asarray(x), train=False)
    with torch.no_grad():
        expected = from_torch_layout(module.conv(module.up(to_torch_layout(x))))
    assert_close(y, expected)


def test_num_batches_tracked():
    sd = {
        "weight": torch.ones(3),
        "bias": torch.zeros(3),
        "running_mean": torch.zeros(3),
        "running_var": torch.ones(3),
        "num_batches_tracked": torch.tensor(7),
    }
    params, state = import_state_dict(jcnn.BatchNorm(momentum=None), sd, input_shape=(2, 3))
    assert int(state["count"]) == 7 and state["count"].dtype == jnp.int32
    out = export_state_dict(jcnn.BatchNorm(momentum=None), params, state, input_shape=(2, 3))
    assert out["num_batches_tracked"].dtype == np.int64 and int(out["num_batches_tracked"]) == 7
    params, state = import_state_dict(jcnn.BatchNorm(), sd, input_shape=(2, 3))  # accepted, not stored
    assert set(state) == {"mean", "var"}
    assert int(export_state_dict(jcnn.BatchNorm(), params, state, input_shape=(2, 3))["num_batches_tracked"]) == 0
    # a model trained for n steps (fit's train_state.step) exports torch's count for every BatchNorm
    model = jcnn.serial(("a", jcnn.BatchNorm()), ("b", jcnn.BatchNorm(momentum=None)))
    params, state = import_state_dict(
        model, {**{f"a.{k}": v for k, v in sd.items()}, **{f"b.{k}": v for k, v in sd.items()}}, input_shape=(2, 3)
    )
    out = export_state_dict(model, params, state, input_shape=(2, 3), num_batches_tracked=jnp.asarray(12))
    assert int(out["a.num_batches_tracked"]) == 12 and int(out["b.num_batches_tracked"]) == 7  # its own count
    with pytest.raises(ValueError, match="export_state_dict: num_batches_tracked must be an int >= 0, got -1"):
        export_state_dict(model, params, state, input_shape=(2, 3), num_batches_tracked=-1)
    del sd["num_batches_tracked"]  # optional on import (older torch checkpoints)
    _, state = import_state_dict(jcnn.BatchNorm(momentum=None), sd, input_shape=(2, 3))
    assert int(state["count"]) == 0


def test_zoo_names_read_classes_and_channels_and_tensors_out():
    net = twin("lenet5", 7, 2)
    params, state = import_state_dict("lenet5", net.state_dict())
    assert params["features"]["0"]["kernel"].shape == (5, 5, 2, 6)
    assert params["classifier"]["4"]["kernel"].shape == (84, 7)
    out = export_state_dict("lenet5", params, state, as_tensors=True)
    assert all(isinstance(v, torch.Tensor) for v in out.values())
    net.load_state_dict(out, strict=True)


def test_import_copies_the_tensors():
    module = nn.Linear(3, 2)
    params, _ = import_state_dict(jcnn.Dense(2), module.state_dict(), input_shape=(1, 3))
    before = np.asarray(params["kernel"]).copy()
    with torch.no_grad():
        module.weight.add_(1.0)
    assert np.array_equal(np.asarray(params["kernel"]), before)


def test_default_zoo_keys_equal_the_twins():
    for name in ("lenet5", "resnet18", "mobilenet_v2", "mobilenet_v1"):
        info_net = twin(name, 1000 if name != "lenet5" else 10, 3 if name != "lenet5" else 1)
        assert torch_shapes(name) == {k: tuple(v.shape) for k, v in info_net.state_dict().items()}, name


def test_import_errors_list_every_problem():
    sd = dict(nn.Conv2d(3, 4, 3).state_dict())
    sd["weight"] = torch.zeros(4, 3, 5, 5)
    del sd["bias"]
    sd["extra"] = torch.zeros(2)
    with pytest.raises(
        ValueError,
        match=r"(?s)does not match the model \(3 problems\).*missing key 'bias' \(expected "
        r"shape \(4,\)\).*shape mismatch for 'weight': got \(4, 3, 5, 5\), expected "
        r"\(4, 3, 3, 3\).*unexpected key 'extra' \(shape \(2,\)\)",
    ):
        import_state_dict(jcnn.Conv(4, 3), sd, input_shape=(1, 8, 8, 3))
    with pytest.raises(ValueError, match=r"import_state_dict\(resnet18\): the state_dict does not match"):
        import_state_dict("resnet18", {"fc.weight": torch.zeros(10, 512)})


def test_a_transposed_linear_weight_is_named_as_such_not_blamed_on_the_next_layer():
    sd = {k: v.clone() for k, v in twin("lenet5", 10, 1).state_dict().items()}
    sd["classifier.4.weight"] = sd["classifier.4.weight"].T.contiguous()  # (84, 10) instead of (10, 84)
    with pytest.raises(
        ValueError,
        match=r"\(1 problems\):\n  shape mismatch for 'classifier.4.weight': got "
        r"\(84, 10\), expected \(10, 84\)",
    ):
        import_state_dict("lenet5", sd)  # the class count comes from the bias, so only this key is wrong


def test_state_dict_values_may_be_lists_and_must_be_numbers():
    params, _ = import_state_dict(
        jcnn.Dense(2), {"weight": [[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]], "bias": [0.5, 0.5]}, input_shape=(1, 3)
    )
    np.testing.assert_array_equal(params["kernel"], [[1, 4], [2, 5], [3, 6]])
    with pytest.raises(
        TypeError,
        match=r"import_state_dict: the value of 'bias' is not a tensor or array of "
        r"numbers, got str",
    ):
        import_state_dict(jcnn.Dense(2), {"weight": np.zeros((2, 3)), "bias": "zeros"}, input_shape=(1, 3))


def test_argument_errors():
    with pytest.raises(ValueError, match="import_state_dict: a Layer needs input_shape"):
        import_state_dict(jcnn.Dense(2), {})
    with pytest.raises(ValueError, match="import_state_dict: unknown model 'resnet19'"):
        import_state_dict("resnet19", {})
    with pytest.raises(TypeError, match="import_state_dict: state_dict must be a mapping"):
        import_state_dict("lenet5", [1, 2])
    with pytest.raises(TypeError, match="import_state_dict: model must be a zoo name or a Layer, got int"):
        import_state_dict(3, {})
    with pytest.raises(TypeError, match=r"import_state_dict: model keywords \['num_classes'\] only apply to zoo names"):
        import_state_dict(jcnn.Dense(2), {}, input_shape=(1, 3), num_classes=3)


def test_export_errors():
    layer = jcnn.Dense(2)
    params = {"kernel": jnp.zeros((3, 2)), "bias": jnp.zeros(2)}
    with pytest.raises(TypeError, match=r"export_state_dict\(Dense\): params do not have the model's structure"):
        export_state_dict(layer, {"kernel": params["kernel"]}, {}, input_shape=(1, 3))
    with pytest.raises(
        ValueError,
        match=r"export_state_dict\(Dense\): params shapes differ from the model's:\n  "
        r"\['kernel'\]: got \(4, 2\), expected \(3, 2\)",
    ):
        export_state_dict(layer, {"kernel": jnp.zeros((4, 2)), "bias": jnp.zeros(2)}, {}, input_shape=(1, 3))

    def init(key, shape):
        return shape, {"kernel": jnp.zeros((2, 2)), "scale": jnp.zeros(2)}, {}

    clash = make_layer("odd", init, lambda p, s, x, *, train, key=None: (x, s))
    with pytest.raises(ValueError, match=r"odd: several jcnn leaves map to the same torch keys \['weight'\]"):
        export_state_dict(clash, *init(None, (1, 2))[1:], input_shape=(1, 2))
