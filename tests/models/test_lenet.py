"""LeNet-5 against its torch twin, the zoo registry (MODELS, get_model) and the input checks."""

import jax
import jax.numpy as jnp
import pytest

from jcnn.models import MODELS, ModelInfo, get_model, lenet5
from tests.models._util import abstract_init, compare_with_twin, round_trip


@pytest.mark.parametrize(
    "activation,pool,grad_dtype", [("relu", "max", "float64"), ("tanh", "avg", "float32"), ("tanh", "avg", "float64")]
)
def test_lenet5_matches_torch_twin(activation, pool, grad_dtype):
    # tanh and average pooling have no kinks, so float32 gradients are stable enough to compare too
    kw = {"activation": activation, "pool": pool}
    compare_with_twin("lenet5", in_channels=1, model_kw=kw, twin_kw=kw, grad_dtype=grad_dtype)


def test_lenet5_three_channels_round_trip():
    round_trip("lenet5", in_channels=3)


def test_lenet5_shapes_names_and_dtypes():
    model = lenet5()
    out_shape, params, state = abstract_init(model, (-1, 32, 32, 1))
    assert out_shape == (-1, 10)
    shapes = jax.tree_util.tree_map(lambda a: a.shape, params)
    assert shapes["features"]["0"]["kernel"] == (5, 5, 1, 6) and shapes["features"]["3"]["kernel"] == (5, 5, 6, 16)
    assert shapes["classifier"]["0"]["kernel"] == (400, 120) and shapes["classifier"]["4"]["kernel"] == (84, 10)
    assert all(a.dtype == jnp.float32 for a in jax.tree_util.tree_leaves(params))
    params = jax.tree_util.tree_map(lambda a: jnp.full(a.shape, 0.1, a.dtype), params)
    apply = jax.jit(lambda x: model.apply(params, state, x, train=False)[0])
    for dtype in (jnp.float32, jnp.bfloat16):
        y = apply(jnp.ones((2, 32, 32, 1), dtype))
        assert y.shape == (2, 10) and y.dtype == dtype


def test_registry():
    classic = {
        "lenet5",
        "vgg11",
        "vgg11_bn",
        "vgg13",
        "vgg13_bn",
        "vgg16",
        "vgg16_bn",
        "resnet18",
        "resnet34",
        "resnet50",
        "mobilenet_v1",
        "mobilenet_v2",
    }
    modern = {
        "mobilenet_v3_small",
        "mobilenet_v3_large",
        *(f"efficientnet_b{i}" for i in range(8)),
        *(f"efficientnet_v2_{s}" for s in "sml"),
        *(f"convnext_{s}" for s in ("tiny", "small", "base", "large")),
        *(f"regnet_y_{s}" for s in ("400mf", "800mf", "1_6gf", "3_2gf", "8gf", "16gf", "32gf", "128gf")),
        *(f"regnet_x_{s}" for s in ("400mf", "800mf", "1_6gf", "3_2gf", "8gf", "16gf", "32gf")),
    }
    assert set(MODELS) == classic | modern
    info = MODELS["lenet5"]
    assert isinstance(info, ModelInfo) and info["input_size"] == info.input_size == (32, 32)
    assert info.input_shape == (1, 32, 32, 1) and info[1] == (32, 32)
    assert MODELS["resnet50"].input_size == (224, 224) and MODELS["resnet50"].num_classes == 1000
    model = get_model("lenet5", num_classes=3, in_channels=2, activation="tanh")
    assert abstract_init(model, (1, 32, 32, 2))[0] == (1, 3)


def test_errors():
    with pytest.raises(ValueError, match="get_model: unknown model 'lenet'"):
        get_model("lenet")
    with pytest.raises(ValueError, match="lenet5: activation must be one of"):
        lenet5(activation="gelu")
    with pytest.raises(ValueError, match="lenet5: pool must be 'max' or 'avg', got 'lp'"):
        lenet5(pool="lp")
    with pytest.raises(ValueError, match="lenet5: num_classes must be an int >= 1, got 0"):
        lenet5(num_classes=0)
    with pytest.raises(ValueError, match="lenet5: in_channels must be an int >= 1, got 1.0"):
        lenet5(in_channels=1.0)
    with pytest.raises(
        ValueError, match=r"lenet5: expected 1 input channels \(in_channels=1\), got shape \(2, 32, 32, 3\)"
    ):
        lenet5().init(jax.random.PRNGKey(0), (2, 32, 32, 3))
    with pytest.raises(ValueError, match=r"lenet5: expected an input of rank 4 \(N, H, W, C\)"):
        lenet5().init(jax.random.PRNGKey(0), (32, 32, 1))
