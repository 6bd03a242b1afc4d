"""Tests of ``jcnn.data.iterators``. The seeded batch iterator: coverage, determinism per (seed, epoch), drop_last, errors."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from jcnn.data import batches


def _data(n=23):
    x = np.arange(n * 2, dtype=np.float32).reshape(n, 2, 1, 1)
    return x, np.arange(n, dtype=np.int32)


@pytest.mark.parametrize("drop_last", [False, True])
def test_coverage_and_sizes(drop_last):
    x, y = _data()
    it = batches(x, y, 5, seed=0, drop_last=drop_last)
    got = list(it)
    assert len(got) == len(it) == (4 if drop_last else 5)
    assert [len(b[1]) for b in got] == ([5] * 4 if drop_last else [5, 5, 5, 5, 3])
    seen = np.concatenate([b[1] for b in got])
    assert len(np.unique(seen)) == len(seen) == (20 if drop_last else 23)
    for xb, yb in got:  # images travel with their labels
        np.testing.assert_array_equal(xb[:, 0, 0, 0], 2 * yb)


def test_deterministic_per_seed_and_epoch():
    x, y = _data()

    def order(**kw):
        return np.concatenate([b[1] for b in batches(x, y, 4, **kw)])

    a = order(seed=3, epoch=1)
    np.testing.assert_array_equal(a, order(seed=3, epoch=1))
    it = batches(x, y, 4, seed=3, epoch=1)
    np.testing.assert_array_equal(np.concatenate([b[1] for b in it]), np.concatenate([b[1] for b in it]))
    assert not np.array_equal(a, order(seed=3, epoch=2))
    assert not np.array_equal(a, order(seed=4, epoch=1))
    assert not np.array_equal(a, np.arange(23))
    np.testing.assert_array_equal(order(seed=3, epoch=1, shuffle=False), np.arange(23))
    np.testing.assert_array_equal(it.order(), a)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"batch_size": 0}, "batch_size must be an int >= 1, got 0"),
        ({"batch_size": True}, "batch_size must be an int >= 1, got True"),
        ({"batch_size": 2.0}, "batch_size must be an int >= 1"),
        ({"seed": -1}, "seed must be an int >= 0"),
        ({"epoch": None}, "epoch must be an int >= 0"),
        ({"batch_size": 24, "drop_last": True}, "batch_size 24 > 23 examples with drop_last=True"),
    ],
)
def test_bad_arguments(kwargs, match):
    x, y = _data()
    args = {"batch_size": 4, "seed": 0, **kwargs}
    with pytest.raises(ValueError, match=f"batches: {match}"):
        batches(x, y, args.pop("batch_size"), **args)


def test_mismatched_or_empty_data():
    x, y = _data()
    with pytest.raises(ValueError, match="batches: 23 images but 22 labels"):
        batches(x, y[:-1], 4, seed=0)
    with pytest.raises(ValueError, match="batches: the data set is empty"):
        batches(x[:0], y[:0], 4, seed=0)


@given(
    n=st.integers(1, 40),
    batch_size=st.integers(1, 45),
    drop_last=st.booleans(),
    seed=st.integers(0, 2**31),
    epoch=st.integers(0, 5),
)
@settings(max_examples=40)
def test_partition_property(n, batch_size, drop_last, seed, epoch):
    x, y = _data(n)
    if drop_last and batch_size > n:
        return
    it = batches(x, y, batch_size, seed=seed, epoch=epoch, drop_last=drop_last)
    sizes = [len(b[1]) for b in it]
    assert len(sizes) == len(it) and all(s == batch_size for s in sizes[:-1]) and 1 <= sizes[-1] <= batch_size
    seen = np.concatenate([b[1] for b in it])
    assert len(np.unique(seen)) == len(seen) == (n // batch_size * batch_size if drop_last else n)
    np.testing.assert_array_equal(np.sort(it.order()), np.arange(n))
