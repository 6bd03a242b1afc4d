"""Fine-tuning a torchvision backbone with a new head: strict=False import reports exactly the keys that
differ, and a frozen backbone stays bit-identical while the head trains (README "Fine-tuning")."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch

import jcnn
from jcnn import optim
from jcnn.inspection import paths
from jcnn.interop.torch import import_state_dict
from jcnn.interop.torch_twins import twin
from jcnn.training.train import TrainState, make_train_step

SHAPE = (2, 32, 32, 3)


def test_strict_false_import_then_frozen_backbone_trains_only_the_head():
    torch.manual_seed(0)
    pretrained = twin("resnet18", num_classes=10, in_channels=3).state_dict()  # stands in for torchvision's
    model = jcnn.models.resnet18(num_classes=4)
    _, fresh_p, fresh_s = model.init(jax.random.PRNGKey(0), SHAPE)
    params, state, report = import_state_dict(
        model, pretrained, input_shape=SHAPE, strict=False, into=(fresh_p, fresh_s)
    )
    assert report.missing == [] and report.unexpected == []
    assert sorted(report.mismatched) == [["fc.bias", (10,), (4,)], ["fc.weight", (10, 512), (4, 512)]]
    np.testing.assert_array_equal(params["conv1"]["kernel"], pretrained["conv1.weight"].numpy().transpose(2, 3, 1, 0))
    assert bool(jnp.all(params["fc"]["kernel"] == fresh_p["fc"]["kernel"]))  # the new head keeps its init

    backbone = ["conv1", "bn1", "layer*"]
    opt = optim.freeze(optim.sgd(0.1, momentum=0.9), backbone)
    ts = TrainState(params, state, opt.init(params), jnp.zeros((), jnp.int32), jax.random.PRNGKey(1))
    step = make_train_step(model, None, opt, donate=False)
    rng = np.random.default_rng(0)
    for _ in range(2):
        x = jnp.asarray(rng.standard_normal(SHAPE), jnp.float32)
        ts, metrics = step(ts, x, jnp.asarray(rng.integers(0, 4, SHAPE[0])))
        assert bool(metrics["finite"])
    frozen = paths.select(params, backbone)
    after = paths.select(ts.params, backbone)
    assert frozen.keys() == after.keys() and len(frozen) == 60
    assert all(np.array_equal(frozen[k], after[k]) for k in frozen)  # bit-identical
    assert not np.array_equal(ts.params["fc"]["kernel"], params["fc"]["kernel"])


def test_strict_false_needs_into_and_strict_errors_suggest_it():
    model = jcnn.Dense(3)
    with pytest.raises(ValueError, match=r"strict=False needs into=\(params, state\)"):
        import_state_dict(model, {"weight": np.zeros((3, 2))}, input_shape=(1, 2), strict=False)
    with pytest.raises(ValueError, match=r"missing key 'bias'.*\n.*strict=False, into=\(params, state\) loads"):
        import_state_dict(model, {"weight": np.zeros((3, 2))}, input_shape=(1, 2))
