"""jcnn.inspection.paths: dotted leaf paths, globs over components (``*`` within one, ``**`` across), select / mask /
replace, and optim.masked / optim.freeze taking patterns."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jcnn import optim
from jcnn.inspection import paths

TREE = {
    "conv1": {"kernel": jnp.ones((3, 3, 1, 2)), "bias": jnp.zeros(2)},
    "layer1": {
        "0": {"conv1": {"kernel": jnp.ones((1, 1, 2, 2))}, "bn1": {"scale": jnp.ones(2)}},
        "1": {"conv1": {"kernel": jnp.ones((1, 1, 2, 2))}},
    },
    "fc": {"kernel": jnp.ones((2, 4)), "bias": jnp.zeros(4)},
}


@pytest.mark.parametrize(
    "pattern, expected",
    [
        ("fc", ["fc.kernel", "fc.bias"]),  # a layer path selects the leaves under it
        ("**.bias", ["conv1.bias", "fc.bias"]),
        ("layer1.*.conv1", ["layer1.0.conv1.kernel", "layer1.1.conv1.kernel"]),
        ("layer?.0.*", ["layer1.0.conv1.kernel", "layer1.0.bn1.scale"]),
        ("layer1.[0].bn1.scale", ["layer1.0.bn1.scale"]),
        ("*.kernel", ["conv1.kernel", "fc.kernel"]),  # '*' stays inside one component
    ],
)
def test_select_by_pattern(pattern, expected):
    assert sorted(paths.select(TREE, pattern)) == sorted(expected)


def test_layer_paths_match_whole_paths_only():
    match = paths.matcher("layer*.0", prefix=False)
    assert match("layer1.0") and not match("layer1.0.conv1") and not match("layer1")
    assert paths.matcher(None)("anything")


def test_mask_and_replace():
    mask = paths.mask(TREE, ["conv1", "fc.bias"])
    assert mask["conv1"]["kernel"] and mask["fc"]["bias"] and not mask["fc"]["kernel"]
    assert not mask["layer1"]["0"]["conv1"]["kernel"]  # 'conv1' is the top-level layer only
    new = paths.replace(TREE, "**.bias", lambda path, leaf: leaf + 1)
    assert float(new["fc"]["bias"][0]) == 1 and float(new["conv1"]["bias"][0]) == 1
    assert new["fc"]["kernel"] is TREE["fc"]["kernel"]
    zeroed = paths.replace(TREE, "fc.kernel", jnp.zeros((2, 4)))
    assert float(jnp.sum(zeroed["fc"]["kernel"])) == 0
    with pytest.raises(ValueError, match=r"replace: the new value for 'fc.kernel' has shape \(3,\), expected \(2, 4\)"):
        paths.replace(TREE, "fc.kernel", jnp.zeros(3))


def test_a_pattern_that_matches_nothing_or_is_malformed_is_an_error():
    with pytest.raises(
        ValueError,
        match=r"select: pattern\(s\) \['layer9'\] match no path; the paths are: "
        r"conv1.bias, conv1.kernel, fc.bias",
    ):
        paths.select(TREE, ["fc", "layer9"])
    assert paths.select(TREE, "layer9", strict=False) == {}
    for bad in ("", "a..b", ".a", "a."):
        with pytest.raises(ValueError, match="paths: a pattern must be a non-empty dotted glob"):
            paths.select(TREE, bad)
    with pytest.raises(TypeError, match="patterns must be a string or a"):
        paths.select(TREE, 3)


def test_masked_and_freeze_take_patterns():
    grads = jax.tree_util.tree_map(jnp.ones_like, TREE)
    sgd = optim.sgd(0.5)
    updates, _ = optim.masked(sgd, "**.kernel").update(grads, optim.masked(sgd, "**.kernel").init(TREE), TREE)
    assert float(updates["fc"]["kernel"][0, 0]) == -0.5 and float(updates["fc"]["bias"][0]) == 1.0  # passed through
    frozen = optim.freeze(sgd, ["conv1", "layer1"])
    updates, state = frozen.update(grads, frozen.init(TREE), TREE)
    assert float(jnp.abs(updates["conv1"]["kernel"]).sum()) == 0 and float(updates["fc"]["bias"][0]) == -0.5
    assert len(jax.tree_util.tree_leaves(state)) <= len(jax.tree_util.tree_leaves(sgd.init(paths.select(TREE, "fc"))))
    np.testing.assert_array_equal(updates["layer1"]["0"]["bn1"]["scale"], 0)
    with pytest.raises(ValueError, match=r"mask: pattern\(s\) \['head'\] match no path"):
        optim.freeze(sgd, "head").init(TREE)
