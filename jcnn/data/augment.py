"""Pure-JAX batch augmentation (random crop with zero padding, horizontal flip): key-driven, jit-able.

Every function takes a batch ``(N, *spatial, C)`` and returns one of the same shape and dtype; each image
draws its own offsets / coin from ``key``, so the result is a pure function of ``(key, images)``.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

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
    ndim: int = images.ndim
    return ndim - 2


def _check_padding(padding: int | Sequence[int], nsp: int) -> tuple[int, ...]:
    pads = (padding,) * nsp if isinstance(padding, int) and not isinstance(padding, bool) else padding
    if (
        not isinstance(pads, (tuple, list))
        or len(pads) != nsp
        or not all(isinstance(p, int) and not isinstance(p, bool) and p >= 0 for p in pads)
    ):
        raise ValueError(f"random_crop: padding must be an int >= 0 or one per spatial dim ({nsp}), got {padding!r}")
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
    out: Array = _crop(key, jnp.asarray(images), pads)
    return out


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
    out: Array = _flip(key, jnp.asarray(images), jnp.float32(prob))
    return out


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


# ---------------------------------------------------------------------------------------------------------
# Mixup and CutMix with soft targets (timm's ``Mixup`` in ``mode="batch"``): one λ per batch, each image
# mixed with its mirror in the batch (``x[::-1]``), targets ``λ·y + (1 − λ)·y[::-1]`` of label-smoothed
# one-hot vectors. Pure functions of ``(key, images, labels)``, jit-able, every shape static.


def soft_targets(labels: Array, num_classes: int | None = None, label_smoothing: float = 0.0) -> Array:
    """Integer labels ``(N,)`` → float32 ``(N, num_classes)`` one-hot rows with label smoothing (``on = 1 − ε +
    ε/K``, ``off = ε/K``, timm's ``mixup_target``); probability labels ``(N, K)`` pass through (smoothed too)."""
    labels = jnp.asarray(labels)
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"soft_targets: label_smoothing must lie in [0, 1], got {label_smoothing!r}")
    if jnp.issubdtype(labels.dtype, jnp.integer):
        if labels.ndim != 1:
            raise ValueError(f"soft_targets: integer labels must have shape (N,), got {tuple(labels.shape)}")
        if not isinstance(num_classes, int) or isinstance(num_classes, bool) or num_classes < 1:
            raise ValueError(f"soft_targets: integer labels need num_classes (an int >= 1), got {num_classes!r}")
        off = label_smoothing / num_classes
        return jax.nn.one_hot(labels, num_classes, dtype=jnp.float32) * (1.0 - label_smoothing) + off
    if labels.ndim != 2:
        raise ValueError(f"soft_targets: probability labels must have shape (N, K), got {tuple(labels.shape)}")
    k = labels.shape[-1]
    return labels.astype(jnp.float32) * (1.0 - label_smoothing) + label_smoothing / k


def _check_alpha(op: str, alpha: float) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not alpha > 0:
        raise ValueError(f"{op}: alpha (of the Beta(alpha, alpha) mixing weight) must be a number > 0, got {alpha!r}")
    return float(alpha)


def _betas(key: PRNGKey, alphas: Sequence[float]) -> Array:
    """One ``Beta(α, α)`` draw per entry of ``alphas`` (float32 ``(len(alphas),)``), from a single vectorized
    log-gamma draw (``Beta(a, b) = X/(X + Y)``, ``X ~ Γ(a)``, ``Y ~ Γ(b)``, in log space as ``jax.random.beta``,
    so small α do not underflow to 0/0): one gamma sampler in the compiled step instead of two per beta
    (each costs ~2 s of XLA compile on CPU)."""
    a = jnp.repeat(jnp.asarray(alphas, jnp.float32), 2)
    log_g = jax.random.loggamma(key, a).reshape(-1, 2)
    g = jnp.exp(log_g - jnp.max(log_g, axis=1, keepdims=True))
    return g[:, 0] / (g[:, 0] + g[:, 1])


def _mix_targets(y: Array, lam: Array) -> Array:
    lam = lam.astype(jnp.float32)
    return y * lam + y[::-1] * (1.0 - lam)


def _mixup_images(images: Array, lam: Array) -> Array:
    lam = lam.astype(images.dtype)
    return images * lam + images[::-1] * (1 - lam)


def _cutmix_box(key: PRNGKey, shape: tuple[int, ...], lam: Array) -> tuple[Array, Array]:
    """timm's ``rand_bbox`` and corrected λ: a box of ``int(H·√(1 − λ))`` × ``int(W·√(1 − λ))`` around a uniform
    centre, clipped to the image; returns the ``(H, W)`` bool mask of the box and ``1 − area/(H·W)``."""
    h, w = shape[1], shape[2]
    ratio = jnp.sqrt(1.0 - lam.astype(jnp.float32))
    cut_h = jnp.floor(h * ratio).astype(jnp.int32)
    cut_w = jnp.floor(w * ratio).astype(jnp.int32)
    ky, kx = jax.random.split(key)
    cy = jax.random.randint(ky, (), 0, h, dtype=jnp.int32)
    cx = jax.random.randint(kx, (), 0, w, dtype=jnp.int32)
    yl, yh = jnp.clip(cy - cut_h // 2, 0, h), jnp.clip(cy + cut_h // 2, 0, h)
    xl, xh = jnp.clip(cx - cut_w // 2, 0, w), jnp.clip(cx + cut_w // 2, 0, w)
    rows = jnp.arange(h, dtype=jnp.int32)[:, None]
    cols = jnp.arange(w, dtype=jnp.int32)[None, :]
    mask = (rows >= yl) & (rows < yh) & (cols >= xl) & (cols < xh)
    area = (yh - yl) * (xh - xl)
    return mask, 1.0 - area.astype(jnp.float32) / jnp.float32(h * w)


def _cutmix_images(images: Array, mask: Array) -> Array:
    return jnp.where(mask[None, :, :, None], images[::-1], images)


def _check_mix_batch(op: str, images: Any, labels: Any) -> None:
    if getattr(images, "ndim", 0) != 4:
        shape = tuple(getattr(images, "shape", ()))
        raise ValueError(f"{op}: expected a batch of images (N, H, W, C), got shape {shape}")
    if len(labels) != images.shape[0]:
        raise ValueError(f"{op}: expected one label per image, got {len(labels)} labels for {images.shape[0]} images")


def mixup(
    key: PRNGKey,
    images: Array,
    labels: Array,
    num_classes: int | None = None,
    *,
    alpha: float = 0.8,
    label_smoothing: float = 0.0,
) -> tuple[Array, Array]:
    """Mixup (Zhang et al. 2018): ``λ ~ Beta(α, α)``, ``x̃ = λ·x + (1 − λ)·x[::-1]``, soft targets
    ``λ·y + (1 − λ)·y[::-1]``. ``images (N, H, W, C)``, ``labels`` integers ``(N,)`` (with ``num_classes``) or
    probabilities ``(N, K)`` → ``(images of the same shape and dtype, float32 targets (N, K))``."""
    _check_mix_batch("mixup", images, labels)
    y = soft_targets(labels, num_classes, label_smoothing)
    lam = _betas(key, [_check_alpha("mixup", alpha)])[0]
    return _mixup_images(jnp.asarray(images), lam), _mix_targets(y, lam)


def cutmix(
    key: PRNGKey,
    images: Array,
    labels: Array,
    num_classes: int | None = None,
    *,
    alpha: float = 1.0,
    label_smoothing: float = 0.0,
) -> tuple[Array, Array]:
    """CutMix (Yun et al. 2019): ``λ ~ Beta(α, α)``, a box of relative side ``√(1 − λ)`` at a uniform centre
    (clipped) is pasted from ``x[::-1]``; the targets use the box's exact share, ``λ = 1 − area/(H·W)``.
    Shapes as :func:`mixup`."""
    _check_mix_batch("cutmix", images, labels)
    y = soft_targets(labels, num_classes, label_smoothing)
    alpha = _check_alpha("cutmix", alpha)
    k_lam, k_box = jax.random.split(key)
    lam = _betas(k_lam, [alpha])[0]
    mask, lam = _cutmix_box(k_box, tuple(images.shape), lam)
    return _cutmix_images(jnp.asarray(images), mask), _mix_targets(y, lam)


def mix_batch(
    key: PRNGKey,
    images: Array,
    labels: Array,
    num_classes: int | None = None,
    *,
    mixup_alpha: float = 0.8,
    cutmix_alpha: float = 1.0,
    prob: float = 1.0,
    switch_prob: float = 0.5,
    label_smoothing: float = 0.0,
) -> tuple[Array, Array]:
    """timm's ``Mixup(mixup_alpha, cutmix_alpha, prob, switch_prob, mode="batch", label_smoothing)``: with
    probability ``prob`` the batch is mixed, by CutMix with probability ``switch_prob`` when both are on
    (an alpha of 0 turns that one off), else by mixup; otherwise it is left as is (``λ = 1``). Targets are
    always soft ``(N, K)``. Shapes as :func:`mixup`."""
    _check_mix_batch("mix_batch", images, labels)
    if mixup_alpha < 0 or cutmix_alpha < 0 or (mixup_alpha == 0 and cutmix_alpha == 0):
        raise ValueError(
            f"mix_batch: needs mixup_alpha > 0 or cutmix_alpha > 0 (and neither < 0), got "
            f"mixup_alpha={mixup_alpha!r}, cutmix_alpha={cutmix_alpha!r}"
        )
    for name, value in (("prob", prob), ("switch_prob", switch_prob)):
        if not 0.0 <= value <= 1.0:
            raise ValueError(f"mix_batch: {name} must lie in [0, 1], got {value!r}")
    images = jnp.asarray(images)
    y = soft_targets(labels, num_classes, label_smoothing)
    k_apply, k_switch, k_lam, k_box = jax.random.split(key, 4)
    apply = jax.random.uniform(k_apply) < prob
    if mixup_alpha > 0 and cutmix_alpha > 0:
        use_cutmix = jax.random.uniform(k_switch) < switch_prob
    else:
        use_cutmix = jnp.asarray(cutmix_alpha > 0)
    lams = _betas(k_lam, [a for a in (mixup_alpha, cutmix_alpha) if a > 0])
    lam_mix = lams[0] if mixup_alpha > 0 else jnp.float32(1.0)
    lam_cut = lams[-1] if cutmix_alpha > 0 else jnp.float32(1.0)
    mask, lam_box = _cutmix_box(k_box, tuple(images.shape), lam_cut)
    mixed = jnp.where(use_cutmix, _cutmix_images(images, mask), _mixup_images(images, lam_mix))
    lam = jnp.where(use_cutmix, lam_box, lam_mix.astype(jnp.float32))
    lam = jnp.where(apply, lam, 1.0)
    return jnp.where(apply, mixed, images), _mix_targets(y, lam)
