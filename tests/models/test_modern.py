"""The modern zoo (MobileNet v3, EfficientNet, ConvNeXt, RegNet) against torch twins with torchvision's module
structure and keys.

Fast suite: the full-size models' keys and shapes (torchvision's ``state_dict``), parameter counts, every
BatchNorm's eps/momentum and the MACs, all without a compile (host-side init, closed-form shapes); the
numerics on one reduced configuration per family (``tests/models/_zoo.TINY``: every block kind, a few
channels; eval logits in float32, train mode in float64 with logits, running statistics and gradients;
export → import identity and strict loading). Slow suite: one full-size model per family at 224² in eval
mode, one full-size train-mode check (RegNetY-400MF) and full-size round trips; `jcnn verify --full`
compares every full-size modern model's eval and train logits at 64².
"""

from __future__ import annotations

import contextlib
import importlib
from unittest import mock

import pytest
import torch

from jcnn import models
from jcnn.inspection.summary import summary
from jcnn.interop import torch_twins
from jcnn.interop import torch_twins_modern as tw
from jcnn.interop.torch import torch_shapes
from jcnn.layers import walk
from jcnn.models import MODELS, get_model
from tests.models import _zoo as Z

# torchvision's parameter counts (its weights' "num_params") and MACs at its evaluation size (its
# "_ops" in GFLOPs, three decimals: torchvision counts a multiply-add as one; the docs' table rounds
# them to two, e.g. MobileNet v3 Small's 0.057 shows as 0.06).
FIGURES = {
    "mobilenet_v3_small": (2_542_856, 0.057),
    "mobilenet_v3_large": (5_483_032, 0.217),
    "efficientnet_b0": (5_288_548, 0.386),
    "efficientnet_b1": (7_794_184, 0.687),
    "efficientnet_b2": (9_109_994, 1.088),
    "efficientnet_b3": (12_233_232, 1.827),
    "convnext_tiny": (28_589_128, 4.456),
    "convnext_small": (50_223_688, 8.684),
    "regnet_y_400mf": (4_344_144, 0.402),
    "regnet_x_400mf": (5_495_976, 0.414),
}
NO_DROP = {
    "tiny_mobilenet_v3": {"dropout": 0.0},
    "tiny_efficientnet": {"dropout": 0.0, "stochastic_depth_prob": 0.0},
    "tiny_convnext": {"stochastic_depth_prob": 0.0},
    "tiny_regnet": {},
}
_NOOP = {
    f: (lambda t, *a, **k: t) for f in ("trunc_normal_", "kaiming_normal_", "normal_", "uniform_", "zeros_", "ones_")
}


def _meta_twin(name: str) -> torch.nn.Module:
    """The full-size twin's structure only: on the meta device, its init skipped (no weights drawn)."""
    with torch.device("meta"), mock.patch.multiple(torch.nn.init, **_NOOP):
        return torch_twins.twin(name, 1000, 3)


@pytest.mark.parametrize("name", sorted(FIGURES))
def test_keys_params_batchnorms_and_macs_equal_torchvision(name):
    net = _meta_twin(name)
    shape = (1, *MODELS[name].input_size, 3)
    layer = Z.model(name, 1000)
    assert torch_shapes(layer, input_shape=shape) == {k: tuple(v.shape) for k, v in net.state_dict().items()}
    s = summary(layer, shape)
    assert s.params == sum(p.numel() for p in net.parameters()) == FIGURES[name][0]
    assert not s.unknown_macs
    macs = s.macs / 1e9
    assert abs(macs / FIGURES[name][1] - 1) <= 0.02, f"{name}: {macs:.4f} GMACs vs torchvision's {FIGURES[name][1]}"
    # every BatchNorm's eps and momentum (torch's meaning), in module order
    ours = [
        (n.layer.hparams["eps"], n.layer.hparams["momentum"]) for n in walk(layer, shape) if n.layer.kind == "BatchNorm"
    ]
    theirs = [(m.eps, m.momentum) for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert ours == theirs
    if name.startswith("mobilenet_v3"):
        assert set(ours) == {(1e-3, 0.01)}


def test_batchnorm_settings_of_the_big_efficientnets_and_v2():
    # torchvision: B0-B4 torch's defaults, B5-B7 eps 1e-3 / momentum 0.01, V2 eps 1e-3 / momentum 0.1
    for name, want in (
        ("efficientnet_b4", (1e-5, 0.1)),
        ("efficientnet_b5", (1e-3, 0.01)),
        ("efficientnet_v2_s", (1e-3, 0.1)),
    ):
        found = {
            (n.layer.hparams["eps"], n.layer.hparams["momentum"])
            for n in walk(get_model(name), (1, 64, 64, 3))
            if n.layer.kind == "BatchNorm"
        }
        assert found == {want}, name
        assert {(m.eps, m.momentum) for m in _meta_twin(name).modules() if isinstance(m, torch.nn.BatchNorm2d)} == {
            want
        }, name


def _xla_depthwise():
    """Depthwise convs lowered by XLA instead of ``"direct"``: the reverse pass of a 7×7 ``"direct"``
    depthwise conv on an 8×8 map takes 7-9 s of XLA compile (49 taps of strided slices; 0.5 s with XLA's
    grouped conv), most of the reduced ConvNeXt's train check (37 s -> 7 s). The lowerings themselves
    are checked against torch in tests/ops; the forward check above keeps the default."""
    conv_module = importlib.import_module("jcnn.ops.conv")
    auto = conv_module._auto_algorithm

    def pick(*args):
        algorithm = auto(*args)
        return "xla" if algorithm == "direct" else algorithm

    return mock.patch.object(conv_module, "_auto_algorithm", pick)


@pytest.mark.parametrize("name", sorted(Z.TINY))
def test_reduced_configuration_matches_torch_twin(name):
    Z.check_eval(name, **NO_DROP[name])
    with _xla_depthwise() if name == "tiny_convnext" else contextlib.nullcontext():
        Z.check_train(name, **NO_DROP[name])
    Z.round_trip(name)


def test_reduced_configurations_cover_the_block_kinds():
    # the tiny tables exercise what the full models have: residual and plain blocks, SE, dilation, fused blocks
    kinds = {n.layer.kind for name in Z.TINY for n in walk(Z.model(name), (1, 32, 32, 3))}
    assert {
        "SqueezeExcitation",
        "StochasticDepth",
        "LayerScale",
        "HardSwish",
        "HardSigmoid",
        "LayerNorm",
        "Gelu",
        "Silu",
    } <= kinds
    keys = torch_shapes(Z.model("tiny_efficientnet"), input_shape=(1, 32, 32, 3))
    assert keys["features.1.0.block.0.0.weight"] == (32, 8, 1, 1)  # expansion 4
    assert keys["features.2.0.block.0.0.weight"] == (8, 1, 3, 3)  # no expansion: depthwise first
    assert keys["features.3.0.block.0.0.weight"] == (16, 16, 3, 3)  # Fused-MBConv: one k×k unit, no SE
    assert "features.3.0.block.1.0.weight" not in keys and keys["features.4.0.block.1.0.weight"] == (24, 64, 1, 1)


def test_errors():
    with pytest.raises(ValueError, match="convnext_tiny: stochastic_depth_prob must be a number in"):
        models.convnext_tiny(stochastic_depth_prob=1.5)
    with pytest.raises(ValueError, match="efficientnet_b0: dropout must be a number in"):
        models.efficientnet_b0(dropout=1.0)
    with pytest.raises(ValueError, match="mobilenet_v3_small: width_mult must be a number > 0"):
        models.mobilenet_v3_small(width_mult=0)
    with pytest.raises(ValueError, match="regnet_y_400mf: num_classes must be an int >= 1"):
        models.regnet_y_400mf(num_classes=0)
    with pytest.raises(ValueError, match="convnext: widths and depths must be equally long"):
        models.convnext.convnext((8, 16), (1,))
    with pytest.raises(ValueError, match="mobilenet_v3: setting must be a non-empty list"):
        models.mobilenet_v3.mobilenet_v3([(8, 3, 8, 8, True, "XX", 1, 1)], 16)
    with pytest.raises(ValueError, match="efficientnet: stages must be a non-empty list"):
        models.efficientnet.efficientnet([], 16)
    with pytest.raises(ValueError, match="regnet: invalid settings w_0=12"):
        models.regnet.regnet(4, 12, 8.0, 2.0, 8)
    with pytest.raises(ValueError, match="efficientnet_b0: expected 3 input channels"):
        summary(models.efficientnet_b0(), (1, 32, 32, 1))


def test_regnet_widths_are_torchvisions_float32_rule():
    assert models.regnet.stage_settings(16, 48, 27.89, 2.09, 8) == tw.regnet_stages(16, 48, 27.89, 2.09, 8)
    assert models.regnet.stage_settings(22, 24, 24.48, 2.54, 16) == [
        (32, 1, 16),
        (64, 2, 16),
        (160, 7, 16),
        (400, 12, 16),
    ]


# -- slow: the full-size models ---------------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mobilenet_v3_large", "efficientnet_b0", "convnext_tiny", "regnet_y_400mf"])
def test_full_size_eval_at_224_matches_torch_twin(name):
    kw = {"dropout": 0.0} if name.startswith(("mobilenet", "efficientnet")) else {}
    Z.check_eval(name, hw=224, batch=1, **kw)


@pytest.mark.slow
def test_full_size_train_mode_matches_torch_twin():
    # float64 train logits, running statistics and every gradient of a full-size model: RegNetY-400MF (16 s
    # cold; MobileNet v3 Small takes 35 s, the others more)
    Z.check_train("regnet_y_400mf")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mobilenet_v3_small", "efficientnet_b0", "regnet_x_400mf"])
def test_full_size_round_trip(name):
    Z.round_trip(name)


def test_input_sizes_are_torchvisions_eval_crops():
    assert {n: MODELS[n].input_size for n in ("efficientnet_b1", "efficientnet_b3", "convnext_tiny")} == {
        "efficientnet_b1": (240, 240),
        "efficientnet_b3": (300, 300),
        "convnext_tiny": (224, 224),
    }
