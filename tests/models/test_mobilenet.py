"""MobileNet v1 (documented keys) and v2 (torchvision's keys) against torch twins, widths and round trips."""

import pytest

from jcnn.models import mobilenet
from tests.models._util import abstract_init, compare_with_twin, round_trip

NO_DROPOUT = {"dropout": 0.0}


def test_mobilenet_v2_matches_torch_twin():
    # 64×64: at 32×32 the last stages are 1×1, and BatchNorm's batch statistics over 4 values make the
    # train-mode logits ill-conditioned in float32 for torch as well (5e-4 vs float64 for both).
    # Its float64 gradients against the twin, per parameter, are the slow step's ledger check
    # (tests/test_ledger.py::test_zoo_parity_float64, 64x64, two SGD steps): the gradient program is the
    # biggest compile of this model, so it is built once, there.
    compare_with_twin("mobilenet_v2", hw=64, model_kw=NO_DROPOUT, twin_kw=NO_DROPOUT, grads=False)


@pytest.mark.slow
def test_mobilenet_v1_matches_torch_twin():
    # v1's blocks are v2's parts (depthwise and pointwise conv-BN-ReLU, whose gradients v2's ledger check
    # covers); its keys are checked by the round trips below in the fast suite.
    compare_with_twin("mobilenet_v1", hw=64, model_kw=NO_DROPOUT, twin_kw=NO_DROPOUT, grads=False)


@pytest.mark.slow
def test_mobilenet_v2_at_224_matches_torch_twin():
    compare_with_twin("mobilenet_v2", hw=224, batch=2, train=False)


@pytest.mark.parametrize(
    "name,kw",
    [
        ("mobilenet_v1", {}),
        ("mobilenet_v2", {}),
        ("mobilenet_v2", {"width_mult": 0.5}),
        ("mobilenet_v1", {"width_mult": 0.75}),
    ],
)
def test_round_trip(name, kw):
    round_trip(name, model_kw=kw, twin_kw=kw)


def test_make_divisible_and_structure():
    assert [mobilenet.make_divisible(v) for v in (16, 12, 13.6, 3, 1280 * 0.5)] == [16, 16, 16, 8, 640]
    _, params, _ = abstract_init(mobilenet.mobilenet_v2(10), (1, 32, 32, 3))
    assert set(params["features"]["1"]) == {"conv"}  # 32 → 16 channels: no shortcut
    assert set(params["features"]["3"]) == {"conv", "identity"}  # 24 → 24, stride 1: residual
    assert params["features"]["18"]["0"]["kernel"].shape == (1, 1, 320, 1280)
    assert params["classifier"]["1"]["kernel"].shape == (1280, 10)
    _, params, _ = abstract_init(mobilenet.mobilenet_v1(10, 1), (1, 32, 32, 1))
    assert params["features"]["1"]["0"]["0"]["kernel"].shape == (3, 3, 1, 32)  # depthwise
    assert params["features"]["13"]["1"]["0"]["kernel"].shape == (1, 1, 1024, 1024)


def test_errors():
    with pytest.raises(ValueError, match="mobilenet_v2: width_mult must be a float > 0, got 0"):
        mobilenet.mobilenet_v2(width_mult=0)
    with pytest.raises(ValueError, match="mobilenet_v1: num_classes must be an int >= 1, got 2.5"):
        mobilenet.mobilenet_v1(num_classes=2.5)
    with pytest.raises(ValueError, match="mobilenet_v1: expected 3 input channels"):
        abstract_init(mobilenet.mobilenet_v1(), (1, 32, 32, 1))
