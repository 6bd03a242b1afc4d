"""VGG-11/13/16 with and without BatchNorm against torch twins (torchvision's architecture and keys)."""

import pytest

from jcnn.interop.torch import torch_shapes
from jcnn.models import vgg
from tests.models._twins import twin
from tests.models._util import compare_with_twin, round_trip

# Narrow classifier (every key kept) so that the checks stay small; no dropout so train mode is deterministic.
SMALL = {"hidden_features": 64, "dropout": 0.0}
SMALL_TWIN = {"hidden": 64, "dropout": 0.0}


def test_vgg11_bn_matches_torch_twin():
    compare_with_twin("vgg11_bn", model_kw=SMALL, twin_kw=SMALL_TWIN)


@pytest.mark.slow
# One configuration without BatchNorm and the deepest with it (the others are the same layers in other
# counts; their keys are round-tripped in the fast suite).
@pytest.mark.parametrize("name", ["vgg13", "vgg16_bn"])
def test_other_vggs_match_torch_twins(name):
    # Logits and running statistics of each configuration; gradients through VGG's layers are vgg11_bn's
    # check in the fast suite (the same layer kinds, fewer of them).
    compare_with_twin(name, model_kw=SMALL, twin_kw=SMALL_TWIN, batch=2, grads=False)


@pytest.mark.slow
def test_vgg16_bn_at_224_matches_torch_twin():
    kw = {"hidden_features": 256}
    compare_with_twin("vgg16_bn", hw=224, batch=1, model_kw=kw, twin_kw={"hidden": 256}, train=False)


@pytest.mark.parametrize("name", ["vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn"])
def test_round_trip(name):
    round_trip(name, model_kw=SMALL, twin_kw=SMALL_TWIN)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["vgg11", "vgg16_bn"])
def test_default_keys_and_shapes_equal_the_twin(name):
    expected = {k: tuple(v.shape) for k, v in twin(name, 1000, 3).state_dict().items()}
    assert torch_shapes(name) == expected
    assert expected["classifier.0.weight"] == (4096, 25088)


def test_errors():
    with pytest.raises(ValueError, match="vgg16: hidden_features must be an int >= 1, got 0"):
        vgg.vgg16(hidden_features=0)
    with pytest.raises(ValueError, match="vgg11_bn: pool_size must be an int >= 1, got None"):
        vgg.vgg11_bn(pool_size=None)
    with pytest.raises(ValueError, match="vgg13: num_classes must be an int >= 1, got True"):
        vgg.vgg13(num_classes=True)
