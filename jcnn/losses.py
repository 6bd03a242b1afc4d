"""Loss functions (docs/design.md §4) with ``torch.nn.functional``'s semantics, channels-last.

Class scores sit on the last axis: ``logits (..., C)`` with integer ``labels (...)`` or probability
``labels (..., C)`` (torch puts classes on axis 1; move them last). ``reduction`` is ``"mean"``,
``"sum"`` or ``"none"`` (the per-element losses). Optional ``weights``:

* classification losses (:func:`softmax_cross_entropy`, :func:`nll`): per-example weights ``(...)``;
  ``"mean"`` is the weighted mean ``Σ wᵢ·lᵢ / Σ wᵢ``. Per-class weights are ``class_weights (C,)``,
  torch's ``weight``: example ``i`` weighs ``class_weights[yᵢ]`` and ``"mean"`` divides by the sum of
  the targets' class weights (both given: the product);
* element-wise losses: ``weights`` broadcasts against the loss and rescales it; ``"mean"`` divides by
  the number of elements (torch's ``binary_cross_entropy(weight=...)``).

Integer labels are class indices in ``[0, C)``: ``−1`` is not "the last class" (use ``ignore_index``).
Eager calls check them and raise ``ValueError``; under ``jax.jit`` (traced labels) an out-of-range
label makes its loss NaN instead of a finite, wrong value (see :mod:`jcnn._labels`).
:func:`binary_cross_entropy` likewise checks ``probs`` in ``[0, 1]`` eagerly (torch raises) and gives
NaN under ``jit``.

Half-precision inputs are computed in float32 and returned in their own dtype. Logits go through
log-sum-exp (never ``log(softmax)``), so ±1e4 logits give finite losses and gradients.
"""

from __future__ import annotations

from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from jcnn._labels import check_class_indices, float_class_ids_hint, invalid, is_concrete
from jcnn._types import Array

_REDUCTIONS = ("mean", "sum", "none")


def _check_reduction(who: str, reduction: str, extra: tuple[str, ...] = ()) -> None:
    if reduction not in _REDUCTIONS + extra:
        raise ValueError(f"{who}: reduction must be one of {_REDUCTIONS + extra}, got {reduction!r}")


def _float(who: str, name: str, x: Any) -> Array:
    a = jnp.asarray(x)
    if not jnp.issubdtype(a.dtype, jnp.floating):
        raise TypeError(f"{who}: {name} must be a floating-point array, got dtype {a.dtype}")
    return a


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
            raise ValueError(
                f"{who}: weights of shape {w.shape} do not broadcast to the loss shape {loss.shape}"
            ) from None
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


def _class_labels(
    who: str, logits: Array, labels: Any, ignore_index: int | None = None, scores: str = "logits"
) -> tuple[Array, bool]:
    """Validate labels: integer ``(...)`` in ``[0, C)`` (returns ``(labels, True)``) or probabilities
    ``(..., C)``."""
    concrete = labels if is_concrete(labels) else None
    labels = jnp.asarray(labels)
    if jnp.issubdtype(labels.dtype, jnp.integer):
        if labels.shape != logits.shape[:-1]:
            raise ValueError(
                f"{who}: integer labels must have shape {scores}.shape[:-1] = {logits.shape[:-1]} "
                f"(classes on the last axis), got {labels.shape}"
            )
        if concrete is not None:
            check_class_indices(
                who, concrete, logits.shape[-1], ignore_index=ignore_index, what=f"the last axis of {scores}"
            )
        return labels, True
    if not jnp.issubdtype(labels.dtype, jnp.floating):
        raise TypeError(f"{who}: labels must be integer class indices or float probabilities, got {labels.dtype}")
    if labels.shape != logits.shape:
        hint = float_class_ids_hint(labels, logits.shape)
        if hint:
            raise TypeError(
                f"{who}: labels must be integer class indices or float probabilities of shape {logits.shape}{hint}"
            )
        _same_shape(who, logits, labels, scores, "probability labels")
    return labels, False


def _class_weights(who: str, class_weights: Any, n_classes: int, dtype: Any) -> Array | None:
    if class_weights is None:
        return None
    cw = _float(who, "class_weights", class_weights)
    if cw.shape != (n_classes,):
        raise ValueError(
            f"{who}: class_weights must have one weight per class, shape ({n_classes},), got shape {cw.shape}"
        )
    return cw.astype(dtype)


def _pick(values: Array, labels: Array) -> Array:
    """``values[..., yᵢ]`` with in-range indices (out-of-range and ignored entries read class 0; the
    caller masks them); ``values`` is ``(..., C)`` like the scores, or one ``(C,)`` row for every example."""
    safe = jnp.where((labels >= 0) & (labels < values.shape[-1]), labels, 0)
    if values.ndim == 1:
        return jnp.take(values, safe)
    return jnp.take_along_axis(values, safe[..., None], axis=-1)[..., 0]


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
    class_weights: Array | None = None,
    label_smoothing: float = 0.0,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> Array:
    """Cross-entropy of ``softmax(logits)`` (``F.cross_entropy``), logits ``(..., C)``.

    Integer labels ``(...)`` in ``[0, C)``: ``lᵢ = (1−ε)·w[yᵢ]·(−log pᵢ[yᵢ]) + (ε/C)·Σ_c w[c]·(−log pᵢ[c])``,
    ε = label_smoothing, ``w`` = ``class_weights`` (1 when not given); entries equal to ``ignore_index``
    contribute 0 and leave the mean's denominator ``Σᵢ w[yᵢ]``. Probability labels ``(..., C)``:
    ``lᵢ = −Σ_c w[c]·tᵢ[c]·log pᵢ[c]`` with ``t ← (1−ε)·t + ε/C`` and the mean over examples (torch).
    ``log p`` is ``logits − logsumexp(logits)``. Per-example ``weights`` multiply ``lᵢ`` and the
    denominator's terms.
    """
    who = "softmax_cross_entropy"
    _check_reduction(who, reduction)
    logits = _float(who, "logits", logits)
    if logits.ndim < 1:
        raise ValueError(f"{who}: logits must have a class axis (..., C), got shape {logits.shape}")
    if not 0.0 <= float(label_smoothing) <= 1.0:
        raise ValueError(f"{who}: label_smoothing must be in [0, 1], got {label_smoothing!r}")
    labels, is_int = _class_labels(who, logits, labels, ignore_index)
    out_dtype = logits.dtype
    ct = _compute_dtype(logits)
    logp = jax.nn.log_softmax(logits.astype(ct), axis=-1)
    n_classes = logits.shape[-1]
    eps = float(label_smoothing)
    w = _example_weights(who, weights, logits.shape[:-1], ct)
    cw = _class_weights(who, class_weights, n_classes, ct)
    if is_int:
        bad = invalid(labels, n_classes, ignore_index)
        if ignore_index is not None:
            w = jnp.where(labels != ignore_index, w, 0.0)
        picked = -_pick(logp, labels)
        if cw is not None:
            picked = picked * _pick(cw, labels)
            w_den = w * _pick(cw, labels)
        else:
            w_den = w
        if eps:
            spread = -jnp.sum(logp if cw is None else logp * cw, axis=-1)
            loss = (1.0 - eps) * picked + (eps / n_classes) * spread
        else:
            loss = picked
        loss = jnp.where(bad, jnp.nan, loss)  # traced out-of-range labels: NaN, never a wrong number
        return _reduce_weighted(loss * w, w_den, reduction, out_dtype)
    if ignore_index is not None:
        raise ValueError(f"{who}: ignore_index needs integer labels, got probability labels")
    t = labels.astype(ct)
    if eps:
        t = (1.0 - eps) * t + eps / n_classes
    loss = -jnp.sum(t * logp if cw is None else t * logp * cw, axis=-1)
    return _reduce_weighted(loss * w, w, reduction, out_dtype)


def nll(
    log_probs: Array,
    labels: Array,
    *,
    weights: Array | None = None,
    class_weights: Array | None = None,
    ignore_index: int | None = None,
    reduction: str = "mean",
) -> Array:
    """Negative log-likelihood ``lᵢ = −w[yᵢ]·log_probs[i, yᵢ]`` (``F.nll_loss``), ``log_probs (..., C)``,
    integer ``labels (...)`` in ``[0, C)``, ``w`` = ``class_weights`` (1 when not given); ``"mean"``
    divides by ``Σᵢ w[yᵢ]``; ``ignore_index`` entries contribute 0 and leave the denominator."""
    who = "nll"
    _check_reduction(who, reduction)
    log_probs = _float(who, "log_probs", log_probs)
    if log_probs.ndim < 1:
        raise ValueError(f"{who}: log_probs must have a class axis (..., C), got shape {log_probs.shape}")
    labels_in = labels
    labels = jnp.asarray(labels)
    if not jnp.issubdtype(labels.dtype, jnp.integer):
        hint = float_class_ids_hint(labels, log_probs.shape) if jnp.issubdtype(labels.dtype, jnp.floating) else ""
        raise TypeError(f"{who}: labels must be integer class indices, got {labels.dtype}{hint}")
    labels, _ = _class_labels(who, log_probs, labels_in, ignore_index, scores="log_probs")
    ct = _compute_dtype(log_probs)
    n_classes = log_probs.shape[-1]
    w = _example_weights(who, weights, log_probs.shape[:-1], ct)
    cw = _class_weights(who, class_weights, n_classes, ct)
    bad = invalid(labels, n_classes, ignore_index)
    if ignore_index is not None:
        w = jnp.where(labels != ignore_index, w, 0.0)
    if cw is not None:
        w = w * _pick(cw, labels)
    picked = -_pick(log_probs.astype(ct), labels)
    picked = jnp.where(bad, jnp.nan, picked)
    return _reduce_weighted(picked * w, w, reduction, log_probs.dtype)


_BCE_EPS = 1e-12  # torch's clamp of p·(1 − p) in binary_cross_entropy's gradient


@jax.custom_jvp
def _bce_elementwise(p: Array, t: Array) -> Array:
    return -(t * jnp.maximum(jnp.log(p), -100.0) + (1.0 - t) * jnp.maximum(jnp.log1p(-p), -100.0))


@_bce_elementwise.defjvp
def _bce_jvp(primals: tuple[Array, Array], tangents: tuple[Array, Array]) -> tuple[Array, Array]:
    # torch's derivatives: ∂l/∂p = (p − t) / max(p·(1 − p), 1e-12), finite at p = 0 and 1 where the
    # clamped logs' own derivative is 0·∞; ∂l/∂t = log(1 − p) − log p, each clamped at −100 (the
    # derivative of the clamped loss: ±100 at p = 0, 1, where torch's unclamped one is ±inf).
    p, t = primals
    dp, dt = tangents
    out = _bce_elementwise(p, t)
    d_p = (p - t) / jnp.maximum(p * (1.0 - p), _BCE_EPS)
    d_t = jnp.maximum(jnp.log1p(-p), -100.0) - jnp.maximum(jnp.log(p), -100.0)
    return out, d_p * dp + d_t * dt


def binary_cross_entropy(
    probs: Array, targets: Array, *, weights: Array | None = None, reduction: str = "mean"
) -> Array:
    """``l = −(t·log p + (1−t)·log(1−p))`` with each log clamped at −100 (``F.binary_cross_entropy``,
    value and gradient, also at ``p = 0`` and ``1``). ``probs`` must lie in ``[0, 1]``: eager calls
    raise ``ValueError`` otherwise (as torch); under ``jit`` such entries give NaN.

    Prefer :func:`binary_cross_entropy_with_logits`, which is stable for any logit.
    """
    who = "binary_cross_entropy"
    _check_reduction(who, reduction)
    concrete = probs if is_concrete(probs) else None
    probs, targets = _float(who, "probs", probs), _float(who, "targets", targets)
    _same_shape(who, probs, targets, "probs", "targets")
    if concrete is not None and probs.size:
        p_host = np.asarray(concrete, np.float64)
        outside = ~((p_host >= 0.0) & (p_host <= 1.0))  # NaN counts as outside, as in torch's check
        if outside.any():
            where = tuple(int(i) for i in np.argwhere(outside)[0])
            raise ValueError(
                f"{who}: probs must be probabilities in [0, 1], got {float(p_host[where])} at index {where if len(where) != 1 else where[0]} "
                f"({int(outside.sum())} of {p_host.size} outside); for raw scores use "
                "binary_cross_entropy_with_logits"
            )
    ct = _compute_dtype(probs, targets)
    p, t = probs.astype(ct), targets.astype(ct)
    loss = _bce_elementwise(p, t)
    loss = jnp.where((p >= 0.0) & (p <= 1.0), loss, jnp.nan)
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


def _abs(d: Array) -> Array:
    """``|d|`` with torch's gradient ``sign(d)``: 0 at ``d = 0`` (``jnp.abs``'s is 1 there)."""
    return d * jnp.sign(d)


def _hinge(z: Array) -> Array:
    """``max(0, z)`` with gradient 0 at ``z = 0``, as torch's margin losses (``jnp.maximum`` gives ½)."""
    return jnp.where(z > 0, z, 0.0)


def mae(predictions: Array, targets: Array, *, weights: Array | None = None, reduction: str = "mean") -> Array:
    """``l = |ŷ − y|`` (``F.l1_loss``; gradient 0 where ``ŷ = y``)."""
    _check_reduction("mae", reduction)
    d, dt = _regression("mae", predictions, targets)
    return _reduce_elementwise("mae", _abs(d), weights, reduction, dt)


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
    a = _abs(d)
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

    The gradient at the kink (a term exactly 0) is 0, as torch's ``multi_margin_loss``.
    """
    who = "hinge"
    _check_reduction(who, reduction)
    scores = _float(who, "scores", scores)
    labels_in = labels
    labels = jnp.asarray(labels)
    ct = _compute_dtype(scores)
    s = scores.astype(ct)
    if jnp.issubdtype(labels.dtype, jnp.integer) and labels.shape == scores.shape[:-1] and scores.ndim >= 1:
        check_class_indices(who, labels_in, scores.shape[-1], what="the last axis of scores")
        bad = invalid(labels, scores.shape[-1])
        true = _pick(s, labels)[..., None]
        parts = _hinge(margin - true + s)
        not_true = jnp.arange(scores.shape[-1]) != labels[..., None]
        loss = jnp.sum(jnp.where(not_true, parts, 0.0), axis=-1) / scores.shape[-1]
        loss = jnp.where(bad, jnp.nan, loss)
    elif labels.shape == scores.shape:
        if is_concrete(labels_in) and labels.size:
            y = np.asarray(labels_in)
            if not np.isin(y, (-1, 1)).all():
                odd = y[~np.isin(y, (-1, 1))]
                raise ValueError(
                    f"{who}: binary labels must be -1 or +1, got {odd.flat[0].item()!r} "
                    f"({odd.size} of {y.size} other values)"
                )
        loss = _hinge(margin - labels.astype(ct) * s)
    else:
        raise ValueError(
            f"{who}: labels must be integer classes of shape scores.shape[:-1] = {scores.shape[:-1]} "
            f"(multi-class) or ±1 values of shape {scores.shape} (binary), got {labels.dtype} {labels.shape}"
        )
    return _reduce_elementwise(who, loss, weights, reduction, scores.dtype)
