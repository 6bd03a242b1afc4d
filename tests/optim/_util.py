"""Twin problems for optimizer trajectory tests: the same initial params and gradient rule in JAX and in
torch, a runner that jits one ``lax.scan`` of all the steps, and one that steps ``torch.optim``."""

from __future__ import annotations

from collections.abc import Callable

import jax
import jax.numpy as jnp
import numpy as np
import torch
import torch.nn.functional as F

from jcnn import optim

STEPS = 200


# ------------------------------------------------------------------------------------------ quadratic


def quadratic(dtype=np.float64, sign: float = 1.0, seed: int = 0):
    """``L = ½·Σ a⊙(p − c)²`` over params ``{"b": (3,), "w": (4, 3)}`` (``sign=−1`` gives ``−∇L``, the
    gradient of the concave ``−L`` that ``maximize=True`` climbs). Returns ``(params, jax_grad, torch_grad)``
    where the torch gradient function takes and returns lists ordered as ``jax.tree_util.tree_leaves``."""
    r = np.random.default_rng(seed)
    params = {"b": r.normal(size=(3,)).astype(dtype), "w": r.normal(size=(4, 3)).astype(dtype)}
    a = {k: r.uniform(0.2, 3.0, size=v.shape).astype(dtype) for k, v in params.items()}
    c = {k: r.normal(size=v.shape).astype(dtype) for k, v in params.items()}
    keys = sorted(params)

    def jax_grad(p):
        return {k: sign * a[k] * (p[k] - c[k]) for k in keys}

    def torch_grad(ps):
        return [sign * torch.from_numpy(a[k]) * (p - torch.from_numpy(c[k])) for k, p in zip(keys, ps)]

    return params, jax_grad, torch_grad


# ------------------------------------------------------------------------------------------ small CNN


def small_cnn(dtype=np.float64, seed: int = 0):
    """Conv 3×3 (2→4, VALID) → ReLU → flatten (NHWC order) → dense (64→3) → softmax cross-entropy, on a
    fixed batch of 8 images 6×6×2. Params are HWIO/``(in, out)``; the torch twin uses the OIHW view of the
    same kernel. Returns ``(params, jax_grad, torch_grad)`` as :func:`quadratic`."""
    r = np.random.default_rng(seed)
    x = r.normal(size=(8, 6, 6, 2)).astype(dtype)
    y = r.integers(0, 3, size=(8,))
    params = {
        "conv_b": (r.normal(size=(4,)) * 0.1).astype(dtype),
        "conv_k": (r.normal(size=(3, 3, 2, 4)) * 0.3).astype(dtype),
        "dense_b": (r.normal(size=(3,)) * 0.1).astype(dtype),
        "dense_k": (r.normal(size=(64, 3)) * 0.2).astype(dtype),
    }

    def loss(p):
        h = jax.lax.conv_general_dilated(
            jnp.asarray(x), p["conv_k"], (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        h = jax.nn.relu(h + p["conv_b"]).reshape(8, -1)
        logits = h @ p["dense_k"] + p["dense_b"]
        return -jnp.mean(jnp.take_along_axis(jax.nn.log_softmax(logits), jnp.asarray(y)[:, None], axis=1))

    tx = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    ty = torch.from_numpy(y)

    def torch_grad(ps):
        cb, ck, db, dk = [p.detach().requires_grad_(True) for p in ps]
        h = F.conv2d(tx, ck.permute(3, 2, 0, 1), cb)  # HWIO → OIHW view of the same tensor
        h = F.relu(h).permute(0, 2, 3, 1).reshape(8, -1)
        out = F.cross_entropy(h @ dk + db, ty)
        return list(torch.autograd.grad(out, [cb, ck, db, dk]))

    return params, jax.grad(loss), torch_grad


# ------------------------------------------------------------------------------------------ runners


def flat(tree_or_list) -> np.ndarray:
    leaves = tree_or_list if isinstance(tree_or_list, list) else jax.tree_util.tree_leaves(tree_or_list)
    return np.concatenate([np.asarray(v).reshape(-1) for v in leaves])


def run_jax(opt: optim.Optimizer, params, grad_fn: Callable, steps: int = STEPS) -> np.ndarray:
    """``(steps, n)``: the flattened params after each of ``steps`` updates, from one jitted scan."""

    def body(carry, _):
        p, s = carry
        u, s = opt.update(grad_fn(p), s, p)
        p = optim.apply_updates(p, u)
        return (p, s), jnp.concatenate([v.reshape(-1) for v in jax.tree_util.tree_leaves(p)])

    p0 = jax.tree_util.tree_map(jnp.asarray, params)
    run = jax.jit(lambda p: jax.lax.scan(body, (p, opt.init(p)), None, length=steps)[1])
    return np.asarray(run(p0))


def run_torch(make_opt: Callable, params, grad_fn: Callable, steps: int = STEPS, make_sched=None) -> np.ndarray:
    """The same with ``torch.optim``: ``make_opt(list_of_tensors)``; ``make_sched(opt)`` is stepped after
    every ``opt.step()``."""
    ps = [torch.tensor(np.array(v), requires_grad=True) for v in jax.tree_util.tree_leaves(params)]
    opt = make_opt(ps)
    sched = make_sched(opt) if make_sched else None
    out = []
    for _ in range(steps):
        for p, g in zip(ps, grad_fn([p.detach() for p in ps])):
            p.grad = g.detach().clone()
        opt.step()
        if sched is not None:
            sched.step()
        out.append(flat([p.detach().numpy() for p in ps]))
    return np.stack(out)


def worst_step_error(actual: np.ndarray, expected: np.ndarray) -> tuple[float, int]:
    """The largest per-step normwise relative error ``max|a−e|/max|e|`` and the step where it occurs."""
    err = np.max(np.abs(actual - expected), axis=1) / np.max(np.abs(expected), axis=1)
    return float(err.max()), int(err.argmax())
