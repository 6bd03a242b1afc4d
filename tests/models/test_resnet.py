"""ResNet-18/34/50 against torch twins (torchvision's architecture and keys), zero_init_residual, round trips."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jcnn.models import resnet
from tests.models._util import compare_with_twin, round_trip


def test_resnet18_matches_torch_twin():
    compare_with_twin("resnet18")


@pytest.mark.slow
def test_resnet50_matches_torch_twin():
    # Logits and running statistics; the float64 gradient program of 50 layers is the slow step's biggest
    # compile (bottleneck blocks' ops have their gradients checked op by op and in resnet18's basic blocks).
    compare_with_twin("resnet50", hw=64, grads=False)


@pytest.mark.slow
def test_resnet18_at_224_matches_torch_twin():
    compare_with_twin("resnet18", hw=224, batch=2, train=False)


# ResNet-34 is ResNet-18's basic blocks, more of them: its keys by round trip, its numerics by resnet18's.
@pytest.mark.parametrize("name", ["resnet18", "resnet34", "resnet50"])
def test_round_trip(name):
    round_trip(name, in_channels=1, num_classes=7)


@pytest.mark.parametrize("make,in_c,last", [(resnet.basic_block, 8, "bn2"), (resnet.bottleneck, 32, "bn3")])
def test_zero_init_residual_starts_blocks_as_identity(make, in_c, last):
    x = jnp.asarray(np.random.default_rng(0).standard_normal((2, 5, 5, in_c)), jnp.float32)
    block = make(8, 1, False, True)
    _, params, state = block.init(jax.random.PRNGKey(0), x.shape)
    assert not np.any(np.asarray(params[last]["scale"]))
    y, _ = block.apply(params, state, x, train=False)
    np.testing.assert_allclose(y, jnp.maximum(x, 0), atol=1e-6)
    _, plain, _ = make(8, 1, False, False).init(jax.random.PRNGKey(0), x.shape)
    assert np.all(np.asarray(plain[last]["scale"]) == 1)


def test_downsample_keys_and_mismatched_shortcut_error():
    _, params, _ = resnet.basic_block(8, 2, True, False).init(jax.random.PRNGKey(0), (1, 6, 6, 4))
    assert set(params) == {"conv1", "bn1", "relu", "conv2", "bn2", "downsample"}
    assert params["downsample"]["0"]["kernel"].shape == (1, 1, 4, 8)
    with pytest.raises(
        ValueError,
        match=r"residual: the block's output shape \(1, 3, 3, 8\) differs from "
        r"the shortcut's \(1, 6, 6, 8\)",
    ):
        resnet.basic_block(8, 2, False, False).init(jax.random.PRNGKey(0), (1, 6, 6, 8))


def test_errors():
    with pytest.raises(ValueError, match="resnet50: num_classes must be an int >= 1, got -1"):
        resnet.resnet50(num_classes=-1)
