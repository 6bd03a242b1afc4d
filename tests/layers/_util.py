"""Helpers for the layer tests: run a jcnn layer and its torch.nn twin forward and backward."""

from __future__ import annotations

import jax
import numpy as np

from tests.helpers import from_torch_layout, to_torch_layout


def jax_forward_backward(layer, params, x, cot, state=None):
    """``y = layer(x)`` (eval mode) and the gradients of ``Σ y·cot`` w.r.t. params and ``x``, as NumPy.

    One jitted program: the forward pass and its VJP compile once, not once per eager primitive; the
    inputs go in as NumPy (``jnp.asarray`` would compile a staging program per shape)."""
    state = {} if state is None else state

    @jax.jit
    def run(p, xx, c):
        y, vjp = jax.vjp(lambda p, xx: layer.apply(p, state, xx, train=False)[0], p, xx)
        return (y, *vjp(c.astype(y.dtype)))

    y, grad_params, grad_x = run(params, x, cot)
    return np.asarray(y), jax.tree_util.tree_map(np.asarray, grad_params), np.asarray(grad_x)


def torch_forward_backward(module, x, cot, channels_last=True):
    """The same for a torch module fed the channels-first view of ``x``; results back in channels-last.

    Returns ``(y, grad_x, {parameter name: grad})`` as NumPy (parameter grads in torch's layout).
    """
    import torch

    if channels_last:
        xt = to_torch_layout(np.asarray(x)).clone().requires_grad_(True)
    else:
        xt = torch.from_numpy(np.array(x)).requires_grad_(True)
    yt = module(xt)
    cot_t = to_torch_layout(np.asarray(cot)) if channels_last else torch.from_numpy(np.array(cot))
    yt.backward(cot_t.to(yt.dtype))
    back = from_torch_layout if channels_last else (lambda t: t.detach().numpy())
    grads = {name: p.grad.detach().numpy() for name, p in module.named_parameters()}
    return back(yt), back(xt.grad), grads


def hwio_from_torch(weight: np.ndarray) -> np.ndarray:
    """torch conv weight ``(C_out, C_in/g, *K)`` → HWIO ``(*K, C_in/g, C_out)``."""
    n = weight.ndim - 2
    return np.transpose(weight, tuple(range(2, n + 2)) + (1, 0))


def transposed_from_torch(weight: np.ndarray) -> np.ndarray:
    """torch transposed weight ``(C_in, C_out/g, *K)`` → ``(*K, C_in, C_out/g)``."""
    n = weight.ndim - 2
    return np.transpose(weight, tuple(range(2, n + 2)) + (0, 1))


def random(shape, seed: int = 0, dtype=np.float32) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(dtype)


def declared_shape(layer, input_shape, key=None):
    """``layer.init``'s output shape under ``jax.eval_shape``: no parameter is drawn, nothing compiles."""
    box = {}

    def run(k):
        box["out"], params, state = layer.init(k, input_shape)
        return params, state

    jax.eval_shape(run, jax.random.PRNGKey(0) if key is None else key)
    return box["out"]
