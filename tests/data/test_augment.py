"""Pure-JAX augmentation: shapes/dtypes, determinism per key, jit == eager, flip and crop content."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jcnn.data import augment, random_crop, random_flip


def _images(n=6, h=5, w=4, c=2, dtype=np.float32):
    return (np.arange(n * h * w * c).reshape(n, h, w, c) % 251 + 1).astype(dtype)


def _crop_offset(out, img, pads):
    """The offset at which ``out`` is a window of zero-padded ``img``, or ``None`` if there is none."""
    padded = np.pad(img, [(p, p) for p in pads] + [(0, 0)])
    for off in np.ndindex(*[2 * p + 1 for p in pads]):
        window = padded[tuple(slice(o, o + s) for o, s in zip(off, img.shape[:-1]))]
        if np.array_equal(window, out):
            return off
    return None


@pytest.mark.parametrize("dtype", [jnp.float32, jnp.bfloat16, jnp.uint8])
def test_shape_dtype_and_determinism(dtype):
    x = jnp.asarray(_images(), dtype=dtype)
    k = jax.random.key(0)
    y = augment(k, x, crop_padding=1)
    assert y.shape == x.shape and y.dtype == x.dtype
    np.testing.assert_array_equal(y, augment(k, x, crop_padding=1))
    assert not np.array_equal(y, augment(jax.random.key(1), x, crop_padding=1))


def test_jit_equals_eager_and_raw_keys_work():
    x = jnp.asarray(_images())
    k = jax.random.PRNGKey(7)
    fn = jax.jit(lambda key, v: augment(key, v, crop_padding=2, flip=True))
    np.testing.assert_array_equal(fn(k, x), augment(k, x, crop_padding=2, flip=True))


def test_flip_correctness():
    x = _images(n=40)
    k = jax.random.key(3)
    np.testing.assert_array_equal(random_flip(k, x, prob=1.0), x[:, :, ::-1, :])
    np.testing.assert_array_equal(random_flip(k, x, prob=0.0), x)
    y = np.asarray(random_flip(k, x))
    flipped = [np.array_equal(y[i], x[i, :, ::-1]) for i in range(40)]
    kept = [np.array_equal(y[i], x[i]) for i in range(40)]
    assert all(f or s for f, s in zip(flipped, kept))
    assert 5 < sum(flipped) < 35  # both outcomes occur (fixed seed)
    np.testing.assert_array_equal(augment(k, x, flip=False), x)


def test_crop_content_covers_every_offset():
    x = _images(n=120, h=4, w=3, c=1)
    y = np.asarray(random_crop(jax.random.key(5), x, 1))
    offsets = [_crop_offset(y[i], x[i], (1, 1)) for i in range(len(x))]
    assert None not in offsets
    assert set(offsets) == set(np.ndindex(3, 3))  # all 9 shifts occur with this seed
    np.testing.assert_array_equal(random_crop(jax.random.key(5), x, 0), x)


@pytest.mark.parametrize("shape, padding", [((5, 7, 2), 2), ((4, 3, 4, 2, 1), (1, 0, 2))])
def test_crop_other_ranks_and_per_dim_padding(shape, padding):
    x = (np.arange(np.prod(shape)).reshape(shape) % 13 + 1).astype(np.float32)
    y = np.asarray(random_crop(jax.random.key(2), x, padding))
    pads = (padding,) * (x.ndim - 2) if isinstance(padding, int) else padding
    for i in range(len(x)):
        off = _crop_offset(y[i], x[i], pads)
        assert off is not None
        assert all(o == p for o, p in zip(off, pads) if p == 0)


@pytest.mark.parametrize("padding", [-1, True, 1.5, (1,), (1, 2, 3)])
def test_bad_padding(padding):
    with pytest.raises(ValueError, match="random_crop: padding must be an int >= 0 or one per spatial dim .2."):
        random_crop(jax.random.key(0), _images(), padding)


@pytest.mark.parametrize("fn", [lambda k, x: random_crop(k, x, 1), random_flip, augment])
def test_needs_a_batch(fn):
    with pytest.raises(
        ValueError, match=r"expected a batch of images \(N, \*spatial, C\) of rank >= 3, got shape \(4, 4\)"
    ):
        fn(jax.random.key(0), np.zeros((4, 4), np.float32))


def test_bad_flip_probability():
    with pytest.raises(ValueError, match="random_flip: prob must lie in"):
        random_flip(jax.random.key(0), _images(), prob=1.5)
