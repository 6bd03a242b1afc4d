"""Loss functions (docs/design.md §4) with ``torch.nn.functional``'s semantics, channels-last.

Class scores sit on the last axis: ``logits (..., C)`` with integer ``labels (...)`` or probability
``labels (..., C)`` (torch puts classes on axis 1; move them last). ``reduction`` is ``"mean"``,
``"sum"`` or ``"none"`` (the per-element losses). Optional ``weights``:

* classification losses (:func:`softmax_cross_entropy`, :func:`nll`): per-example weights ``(...)``;
  ``"mean"`` is the weighted mean ``Σ wᵢ·lᵢ / Σ wᵢ`` (torch's mean with class ``weight``, whose
  per-example weight is ``weight[yᵢ]``);
* element-wise losses: ``weights`` broadcasts against the loss and rescales it; ``"mean"`` divides by
  the number of elements (torch's ``binary_cross_entropy(weight=...)``).

Half-precision inputs are computed in float32 and returned in their own dtype. Logits go through
log-sum-exp (never ``log(softmax)``), so ±1e4 logits give finite losses and gradients.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp

from jcnn._types import Array

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(who: str, reduction: str, extra: tuple[str, ...] = ()) -> None:
    if reduction not in _REDUCTIONS + extra:
        raise ValueError(f"{who}: reduction must be one of {_REDUCTIONS + extra}, got {reduction!r}")


def _float(who: str, name: str, x: Any) -> Array:
    x = jnp.asarray(x)
    if not jnp.issubdtype(x.dtype, jnp.floating):
        raise TypeError(f"{who}: {name} must be a floating-point array, got dtype {x.dtype}")
    return x


def _compute_dtype(*xs: Array) -> Any:
    """float32 for half inputs (so exp/log keep their range), else the inputs' float dtype."""
    dt = jnp.result_type(*[x.dtype for x in xs])
    return jnp.promote_types(dt, jnp.float32)


def _same_shape(who: str, a: Array, b: Array, a_name: str, b_name: str) -> None:
    if a.shape != b.shape:
        raise ValueError(f"{who}: {a_name} and {b_name} must have the same shape, got {a.shape} and {b.shape}")


def _reduce_elementwise(who: str, loss: Array, weights: Any, reduction: str, out_dtype: Any) -> Array:
    if weights is not None:
        w = _float(who, "weights", weights)
        try:
            jnp.broadcast_shapes(w.shape, loss.shape)
        except ValueError:
            raise ValueError(f"{who}: weights of shape {w.shape} do not broadcast to the loss shape {loss.shape}") from None
        if jnp.broadcast_shapes(w.shape, loss.shape) != loss.shape:
            raise ValueError(f"{who}: weights of shape {w.shape} would enlarge the loss shape {loss.shape}")
        loss = loss * w.astype(loss.dtype)
    if reduction == "mean":
        loss = jnp.mean(loss)
    elif reduction == "sum":
        loss = jnp.sum(loss)
    return loss.astype(out_dtype)


def _reduce_weighted(loss: Array, w: Array, reduction: str, out_dtype: Any) -> Array:
    """``loss`` already multiplied by ``w``; "mean" divides by ``Σ w`` (NaN when it is 0, as torch)."""
    if reduction == "mean":
        loss = jnp.sum(loss) / jnp.sum(w)
    elif reduction == "sum":
        loss = jnp.sum(loss)
    return loss.astype(out_dtype)


def _class_labels(who: str, logits: Array, labels: Any) -> tuple[Array, bool]:
    """Validate labels: integer ``(...)`` (returns ``(labels, True)``) or probabilities ``(..., C)``."""
    labels = jnp.asarray(labels)
    if jnp.issubdtype(labels.dtype, jnp.integer):
        if labels.shape != logits.shape[:-1]:
            raise ValueError(
                f"{who}: integer labels must have shape logits.shape[:-1] = {logits.shape[:-1]} "
                f"(classes on the last axis), got {labels.shape}"
            )
        return labels, True
    if not jnp.issubdtype(labels.dtype, jnp.floating):
        raise TypeError(f"{who}: labels must be integer class indices or float probabilities, got {labels.dtype}")
    _same_shape(who, logits, labels, "logits", "probability labels")
    return labels, False


def _example_weights(who: str, weights: Any, shape: tuple[int, ...], dtype: Any) -> Array:
    if weights is None:
        return jnp.ones(shape, dtype)
    w = _float(who, "weights", weights)
    if w.shape != shape:
        raise ValueError(f"{who}: per-example weights must have shape {shape}, got {w.shape}")
    return w.astype(dtype)


def softmax_cross_entropy(
    logits: Array,
    labels: Array,
    *,
    weights: Array | None = None,
    label_smoothing: float = 0.0,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> Array:
    """Cross-entropy of ``softmax(logits)`` (``F.cross_entropy``), logits ``(..., C)``.

    Integer labels ``(...)``: ``lᵢ = (1−ε)·(−log pᵢ[yᵢ]) + (ε/C)·Σ_c (−log pᵢ[c])``, ε = label_smoothing;
    entries equal to ``ignore_index`` contribute 0 and leave the mean's denominator. Probability labels
    ``(..., C)``: ``lᵢ = −Σ_c tᵢ[c]·log pᵢ[c]`` with ``t ← (1−ε)·t + ε/C``. ``log p`` is
    ``logits − logsumexp(logits)``.
    """
    who = "softmax_cross_entropy"
    _check_reduction(who, reduction)
    logits = _float(who, "logits", logits)
    if logits.ndim < 1:
        raise ValueError(f"{who}: logits must have a class axis (..., C), got shape {logits.shape}")
    if not 0.0 <= float(label_smoothing) <= 1.0:
        raise ValueError(f"{who}: label_smoothing must be in [0, 1], got {label_smoothing!r}")
    labels, is_int = _class_labels(who, logits, labels)
    out_dtype = logits.dtype
    ct = _compute_dtype(logits)
    logp = jax.nn.log_softmax(logits.astype(ct), axis=-1)
    n_classes = logits.shape[-1]
    eps = float(label_smoothing)
    w = _example_weights(who, weights, logits.shape[:-1], ct)
    if is_int:
        if ignore_index is not None:
            keep = labels != ignore_index
            w = jnp.where(keep, w, 0.0)
            labels = jnp.where(keep, labels, 0)
        picked = -jnp.take_along_axis(logp, labels[..., None], axis=-1)[..., 0]
        loss = (1.0 - eps) * picked + (eps / n_classes) * -jnp.sum(logp, axis=-1) if eps else picked
    else:
        if ignore_index is not None:
            raise ValueError(f"{who}: ignore_index needs integer labels, got probability labels")
        t = labels.astype(ct)
        if eps:
            t = (1.0 - eps) * t + eps / n_classes
        loss = -jnp.sum(t * logp, axis=-1)
    return _reduce_weighted(loss * w, w, reduction, out_dtype)


def nll(
    log_probs: Array,
    labels: Array,
    *,
    weights: Array | None = None,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> Array:
    """Negative log-likelihood ``lᵢ = −log_probs[i, yᵢ]`` (``F.nll_loss``), ``log_probs (..., C)``,
    integer ``labels (...)``; ``ignore_index`` entries contribute 0 and leave the mean's denominator."""
    who = "nll"
    _check_reduction(who, reduction)
    log_probs = _float(who, "log_probs", log_probs)
    if log_probs.ndim < 1:
        raise ValueError(f"{who}: log_probs must have a class axis (..., C), got shape {log_probs.shape}")
    labels, is_int = _class_labels(who, log_probs, labels)
    if not is_int:
        raise TypeError(f"{who}: labels must be integer class indices, got {labels.dtype}")
    ct = _compute_dtype(log_probs)
    w = _example_weights(who, weights, log_probs.shape[:-1], ct)
    if ignore_index is not None:
        keep = labels != ignore_index
        w = jnp.where(keep, w, 0.0)
        labels = jnp.where(keep, labels, 0)
    picked = -jnp.take_along_axis(log_probs.astype(ct), labels[..., None], axis=-1)[..., 0]
    return _reduce_weighted(picked * w, w, reduction, log_probs.dtype)


def binary_cross_entropy(
    probs: Array, targets: Array, *, weights: Array | None = None, reduction: str = "mean"
) -> Array:
    """``l = −(t·log p + (1−t)·log(1−p))`` with each log clamped at −100 (``F.binary_cross_entropy``).

    Prefer :func:`binary_cross_entropy_with_logits`, which is stable for any logit.
    """
    who = "binary_cross_entropy"
    _check_reduction(who, reduction)
    probs, targets = _float(who, "probs", probs), _float(who, "targets", targets)
    _same_shape(who, probs, targets, "probs", "targets")
    ct = _compute_dtype(probs, targets)
    p, t = probs.astype(ct), targets.astype(ct)
    loss = -(t * jnp.maximum(jnp.log(p), -100.0) + (1.0 - t) * jnp.maximum(jnp.log1p(-p), -100.0))
    return _reduce_elementwise(who, loss, weights, reduction, probs.dtype)


def binary_cross_entropy_with_logits(
    logits: Array,
    targets: Array,
    *,
    weights: Array | None = None,
    pos_weight: Array | None = None,
    reduction: str = "mean",
) -> Array:
    """``l = −(w_pos·t·log σ(x) + (1−t)·log(1−σ(x)))`` (``F.binary_cross_entropy_with_logits``),
    computed as ``(1−t)·x + (1 + (w_pos−1)·t)·softplus(−x)``; ``pos_weight`` broadcasts over the last
    axis (one per class)."""
    who = "binary_cross_entropy_with_logits"
    _check_reduction(who, reduction)
    logits, targets = _float(who, "logits", logits), _float(who, "targets", targets)
    _same_shape(who, logits, targets, "logits", "targets")
    ct = _compute_dtype(logits, targets)
    x, t = logits.astype(ct), targets.astype(ct)
    softplus_neg = jnp.logaddexp(0.0, -x)  # log(1 + e^{−x}) = −log σ(x), stable both ways
    if pos_weight is None:
        loss = (1.0 - t) * x + softplus_neg
    else:
        pw = _float(who, "pos_weight", pos_weight)
        if pw.ndim > 1 or (pw.ndim == 1 and pw.shape[0] not in (1, logits.shape[-1] if logits.ndim else 1)):
            raise ValueError(
                f"{who}: pos_weight must be a scalar or one value per class (shape ({logits.shape[-1:]})), "
                f"got shape {pw.shape}"
            )
        loss = (1.0 - t) * x + (1.0 + (pw.astype(ct) - 1.0) * t) * softplus_neg
    return _reduce_elementwise(who, loss, weights, reduction, logits.dtype)


def _regression(who: str, predictions: Array, targets: Array) -> tuple[Array, Any]:
    predictions, targets = _float(who, "predictions", predictions), _float(who, "targets", targets)
    _same_shape(who, predictions, targets, "predictions", "targets")
    ct = _compute_dtype(predictions, targets)
    return predictions.astype(ct) - targets.astype(ct), jnp.result_type(predictions, targets)


def mse(predictions: Array, targets: Array, *, weights: Array | None = None, reduction: str = "mean") -> Array:
    """``l = (ŷ − y)²`` (``F.mse_loss``)."""
    _check_reduction("mse", reduction)
    d, dt = _regression("mse", predictions, targets)
    return _reduce_elementwise("mse", d * d, weights, reduction, dt)


def mae(predictions: Array, targets: Array, *, weights: Array | None = None, reduction: str = "mean") -> Array:
    """``l = |ŷ − y|`` (``F.l1_loss``)."""
    _check_reduction("mae", reduction)
    d, dt = _regression("mae", predictions, targets)
    return _reduce_elementwise("mae", jnp.abs(d), weights, reduction, dt)


def huber(
    predictions: Array, targets: Array, *, delta: float = 1.0, weights: Array | None = None, reduction: str = "mean"
) -> Array:
    """``l = ½d²`` if ``|d| < δ`` else ``δ·(|d| − ½δ)``, ``d = ŷ − y`` (``F.huber_loss``)."""
    _check_reduction("huber", reduction)
    if not float(delta) > 0:
        raise ValueError(f"huber: delta must be > 0, got {delta!r}")
    d, dt = _regression("huber", predictions, targets)
    a = jnp.abs(d)
    loss = jnp.where(a < delta, 0.5 * d * d, delta * (a - 0.5 * delta))
    return _reduce_elementwise("huber", loss, weights, reduction, dt)


def smooth_l1(
    predictions: Array, targets: Array, *, beta: float = 1.0, weights: Array | None = None, reduction: str = "mean"
) -> Array:
    """``l = ½d²/β`` if ``|d| < β`` else ``|d| − ½β`` (``F.smooth_l1_loss``; ``β = 0`` is L1)."""
    _check_reduction("smooth_l1", reduction)
    if not float(beta) >= 0:
        raise ValueError(f"smooth_l1: beta must be >= 0, got {beta!r}")
    d, dt = _regression("smooth_l1", predictions, targets)
    a = jnp.abs(d)
    loss = a if beta == 0 else jnp.where(a < beta, 0.5 * d * d / beta, a - 0.5 * beta)
    return _reduce_elementwise("smooth_l1", loss, weights, reduction, dt)


def kl_div(
    log_predictions: Array,
    targets: Array,
    *,
    log_target: bool = False,
    weights: Array | None = None,
    reduction: str = "mean",
) -> Array:
    """``l = t·(log t − log q)`` (0 where ``t = 0``) with ``log_predictions = log q`` (``F.kl_div``);
    ``log_target=True`` takes ``targets = log t``. ``"batchmean"`` divides the sum by the batch size
    (the true KL divergence per example); ``"mean"`` divides by the element count, as torch."""
    who = "kl_div"
    _check_reduction(who, reduction, ("batchmean",))
    logq, t = _float(who, "log_predictions", log_predictions), _float(who, "targets", targets)
    _same_shape(who, logq, t, "log_predictions", "targets")
    ct = _compute_dtype(logq, t)
    lq, tt = logq.astype(ct), t.astype(ct)
    loss = jnp.exp(tt) * (tt - lq) if log_target else jax.scipy.special.xlogy(tt, tt) - tt * lq
    dt = jnp.result_type(logq, t)
    if reduction == "batchmean":
        n = logq.shape[0] if logq.ndim else 1
        return (_reduce_elementwise(who, loss, weights, "sum", ct) / n).astype(dt)
    return _reduce_elementwise(who, loss, weights, reduction, dt)


def hinge(
    scores: Array, labels: Array, *, margin: float = 1.0, weights: Array | None = None, reduction: str = "mean"
) -> Array:
    """Hinge loss.

    * Multi-class, integer ``labels (...)`` with ``scores (..., C)``: ``lᵢ = Σ_{c≠yᵢ} max(0, margin −
      sᵢ[yᵢ] + sᵢ[c]) / C`` (``F.multi_margin_loss``).
    * Binary, ``labels`` in ``{−1, +1}`` shaped like ``scores``: ``l = max(0, margin − y·s)``.
    """
    who = "hinge"
    _check_reduction(who, reduction)
    scores = _float(who, "scores", scores)
    labels = jnp.asarray(labels)
    ct = _compute_dtype(scores)
    s = scores.astype(ct)
    if jnp.issubdtype(labels.dtype, jnp.integer) and labels.shape == scores.shape[:-1] and scores.ndim >= 1:
        true = jnp.take_along_axis(s, labels[..., None], axis=-1)
        parts = jnp.maximum(0.0, margin - true + s)
        not_true = jnp.arange(scores.shape[-1]) != labels[..., None]
        loss = jnp.sum(jnp.where(not_true, parts, 0.0), axis=-1) / scores.shape[-1]
    elif labels.shape == scores.shape:
        loss = jnp.maximum(0.0, margin - labels.astype(ct) * s)
    else:
        raise ValueError(
            f"{who}: labels must be integer classes of shape scores.shape[:-1] = {scores.shape[:-1]} "
            f"(multi-class) or ±1 values of shape {scores.shape} (binary), got {labels.dtype} {labels.shape}"
        )
    return _reduce_elementwise(who, loss, weights, reduction, scores.dtype)
