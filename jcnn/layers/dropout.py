"""Inverted dropout (Srivastava et al. 2014, as ``torch.nn.Dropout``) and stochastic depth (Huang et al.
2016, as ``torchvision.ops.StochasticDepth``)."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jcnn._types import Array, Params, PRNGKey, ShapeTree, State
from jcnn.layers.base import Layer, check_shape, constructor, make_layer
from jcnn.ops.blocks import check_stochastic_depth, stochastic_depth


@constructor
def Dropout(rate: float) -> Layer:
    """Zero each element with probability ``rate`` in training and scale the kept ones by ``1/(1 − rate)``:
    ``y = x · m / (1 − rate)``, ``m ~ Bernoulli(1 − rate)``, so ``E[y] = x``. Identity when
    ``train=False`` (and when ``rate == 0``). Any shape in, the same shape out; no params, no state.

    Training with ``rate > 0`` needs ``key`` (combinators split theirs, so two Dropouts get different masks).
    """
    if isinstance(rate, bool) or not isinstance(rate, (int, float)) or not 0 <= rate < 1:
        raise ValueError(f"Dropout: rate (the probability of dropping) must be a number in [0, 1), got {rate!r}")
    rate = float(rate)

    def shape(input_shape: ShapeTree) -> ShapeTree:
        return check_shape("Dropout", input_shape)

    def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[ShapeTree, Params, State]:
        return shape(input_shape), {}, {}

    def apply(
        params: Params, state: State, x: Array, *, train: bool, key: PRNGKey | None = None
    ) -> tuple[Array, State]:
        if not train or rate == 0.0:
            return x, state
        if key is None:
            raise ValueError(
                "Dropout: train=True needs a PRNG key: call apply(params, state, x, train=True, "
                "key=jax.random.key(...)) (or pass train=False for evaluation)"
            )
        keep = jax.random.bernoulli(key, 1.0 - rate, x.shape)
        return jnp.where(keep, x / (1.0 - rate), 0).astype(x.dtype), state

    return make_layer("Dropout", init, apply, shape=shape, host_init=True)


@constructor
def StochasticDepth(p: float, mode: str = "row") -> Layer:
    """Stochastic depth / DropPath as ``torchvision.ops.StochasticDepth``: in training, zero the whole input
    of an example (``mode="row"``) or of the batch (``"batch"``) with probability ``p`` and scale what is
    kept by ``1/(1 − p)`` (see :func:`jcnn.ops.stochastic_depth`); identity when ``train=False`` or
    ``p == 0``. Put it on a residual branch: ``residual(serial(block, StochasticDepth(0.1)))``.
    ``(N, …)`` in, the same shape out; no params, no state; training with ``p > 0`` needs ``key``.
    """
    p = check_stochastic_depth("StochasticDepth", p, mode)

    def shape(input_shape: ShapeTree) -> ShapeTree:
        return check_shape("StochasticDepth", input_shape, min_ndim=1, what="(N, ...)")

    def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[ShapeTree, Params, State]:
        return shape(input_shape), {}, {}

    def apply(
        params: Params, state: State, x: Array, *, train: bool, key: PRNGKey | None = None
    ) -> tuple[Array, State]:
        if train and p > 0.0 and key is None:
            raise ValueError(
                "StochasticDepth: train=True needs a PRNG key: call apply(params, state, x, train=True, "
                "key=jax.random.key(...)) (or pass train=False for evaluation)"
            )
        return stochastic_depth(x, p, mode, key=key, train=train), state

    return make_layer("StochasticDepth", init, apply, shape=shape, host_init=True)
