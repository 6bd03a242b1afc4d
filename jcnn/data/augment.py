"""Pure-JAX batch augmentation (random crop with zero padding, horizontal flip): key-driven, jit-able.

Every function takes a batch ``(N, *spatial, C)`` and returns one of the same shape and dtype; each image
draws its own offsets / coin from ``key``, so the result is a pure function of ``(key, images)``.
"""

from __future__ import annotations

from functools import partial
from typing import Any, Sequence

import jax
import jax.numpy as jnp
from jax import lax

from jcnn._types import Array, PRNGKey

# Sensible defaults per data set: digits are not mirror-symmetric, clothes and CIFAR objects are.
AUGMENTATION_DEFAULTS: dict[str, dict[str, Any]] = {
    "digits": {"crop_padding": 1, "flip": False},
    "mnist": {"crop_padding": 2, "flip": False},
    "fashion-mnist": {"crop_padding": 2, "flip": True},
    "cifar10": {"crop_padding": 4, "flip": True},
}
"""The augmentation ``jcnn train`` uses per data set: random-crop padding in pixels, horizontal flips."""


def _check_batch(op: str, images: Any) -> int:
    if getattr(images, "ndim", 0) < 3:
        shape = tuple(getattr(images, "shape", ()))
        raise ValueError(f"{op}: expected a batch of images (N, *spatial, C) of rank >= 3, got shape {shape}")
    return images.ndim - 2


def _check_padding(padding: int | Sequence[int], nsp: int) -> tuple[int, ...]:
    pads = (padding,) * nsp if isinstance(padding, int) and not isinstance(padding, bool) else padding
    if (
        not isinstance(pads, (tuple, list))
        or len(pads) != nsp
        or not all(isinstance(p, int) and not isinstance(p, bool) and p >= 0 for p in pads)
    ):
        raise ValueError(
            f"random_crop: padding must be an int >= 0 or one per spatial dim ({nsp}), got {padding!r}"
        )
    return tuple(pads)


def random_crop(key: PRNGKey, images: Array, padding: int | Sequence[int]) -> Array:
    """Zero-pad each spatial dim by ``padding`` on both sides, then cut a window of the original size at
    a random offset ``o ∈ [0, 2·padding]`` per image and dim: ``y[n, i, j] = pad(x)[n, i + o_h, j + o_w]``.

    ``images (N, *spatial, C)`` → same shape and dtype. ``padding=0`` returns the input unchanged.
    """
    nsp = _check_batch("random_crop", images)
    pads = _check_padding(padding, nsp)
    if not any(pads):
        return images
    return _crop(key, jnp.asarray(images), pads)


# Jitted so that an eager call compiles once per shape instead of dispatching op by op (inlined under jit).
@partial(jax.jit, static_argnums=2)
def _crop(key: PRNGKey, images: Array, pads: tuple[int, ...]) -> Array:
    nsp = len(pads)
    padded = jnp.pad(images, [(0, 0)] + [(p, p) for p in pads] + [(0, 0)])
    offsets = jax.random.randint(
        key, (images.shape[0], nsp), 0, jnp.asarray([2 * p + 1 for p in pads], dtype=jnp.int32), dtype=jnp.int32
    )
    window = images.shape[1:]

    def crop(img: Array, off: Array) -> Array:
        return lax.dynamic_slice(img, tuple(off[d] for d in range(nsp)) + (jnp.int32(0),), window)

    return jax.vmap(crop)(padded, offsets)


def random_flip(key: PRNGKey, images: Array, *, prob: float = 0.5) -> Array:
    """Mirror each image left-right (reverse the width axis, ``-2``) with probability ``prob``.

    ``images (N, *spatial, C)`` → same shape and dtype: ``y[n] = x[n, ..., ::-1, :]`` where the coin is heads.
    """
    _check_batch("random_flip", images)
    if not 0.0 <= prob <= 1.0:
        raise ValueError(f"random_flip: prob must lie in [0, 1], got {prob!r}")
    return _flip(key, jnp.asarray(images), jnp.float32(prob))


@jax.jit
def _flip(key: PRNGKey, images: Array, prob: Array) -> Array:
    heads = jax.random.bernoulli(key, prob, (images.shape[0],))
    heads = heads.reshape((-1,) + (1,) * (images.ndim - 1))
    return jnp.where(heads, jnp.flip(images, axis=-2), images)


def augment(key: PRNGKey, images: Array, *, crop_padding: int | Sequence[int] = 0, flip: bool = True) -> Array:
    """``random_flip`` (if ``flip``) after ``random_crop`` (if ``crop_padding``), with independent keys.

    See ``AUGMENTATION_DEFAULTS`` for per-data-set settings (never flip digits).
    """
    crop_key, flip_key = jax.random.split(key)
    out = random_crop(crop_key, images, crop_padding)
    return random_flip(flip_key, out) if flip else out
