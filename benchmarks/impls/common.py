"""What every implementation gives the harness, and the shared JAX plumbing (compile, memory, timing).

The benchmark setting, identical for every implementation: softmax cross-entropy on integer labels,
SGD with momentum 0.9 (lr 0.01, torch semantics), BatchNorm in training mode with running statistics
(momentum 0.1, eps 1e-5), no dropout (MobileNet v2 and VGG are built with ``dropout=0``), float32.

Models: torchvision's LeNet-5, ResNet-18/50 and MobileNet v2; ``cifar_resnet18`` is ResNet-18 with the
usual CIFAR stem (3×3/1 conv, no max pool); ``vgg11_bn`` is VGG-11 with BatchNorm sized for 32² inputs
(a 1×1 average pool and a 512-wide classifier, the zoo's ``pool_size=1, hidden_features=512``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jax
import numpy as np

MODELS = ("lenet5", "resnet18", "mobilenet_v2", "cifar_resnet18", "resnet50", "vgg11_bn")
VGG11 = (64, "M", 128, "M", 256, 256, "M", 512, 512, "M", 512, 512, "M")
VGG_HIDDEN = 512
NUM_CLASSES = 10
LR, MOMENTUM = 0.01, 0.9
BN_MOMENTUM, BN_EPS = 0.1, 1e-5


def in_channels(model: str) -> int:
    return 1 if model == "lenet5" else 3


def example_batch(model: str, batch: int, size: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A fixed random channels-last batch ``(batch, size, size, C)`` float32 and int32 labels."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, size, size, in_channels(model))).astype(np.float32)
    y = rng.integers(0, NUM_CLASSES, batch).astype(np.int32)
    return x, y


@dataclass
class Impl:
    """A built implementation of one model at one batch size.

    ``step()`` runs one training step to completion (blocking); ``infer()`` one batch-1 inference
    (blocking); ``compile_s`` / ``temp_bytes`` are the train step's compile time and the temporary buffer
    bytes of the compiled step (``memory_analysis()``; ``None`` for torch); ``logits(x)`` evaluates the
    model in eval mode on a channels-last NumPy batch (used by the tests to compare twins).
    """

    step: Callable[[], Any]
    infer: Callable[[], Any]
    logits: Callable[[np.ndarray], np.ndarray]
    compile_s: float | None = None
    temp_bytes: int | None = None
    extra: dict = field(default_factory=dict)


def compile_jax(fn: Callable, *args: Any, donate: tuple[int, ...] = ()) -> tuple[Any, float, int | None]:
    """``jax.jit(fn).lower(*args).compile()``: the executable, the seconds it took, its temp bytes."""
    t0 = time.perf_counter()
    compiled = jax.jit(fn, donate_argnums=donate).lower(*args).compile()
    seconds = time.perf_counter() - t0
    mem = compiled.memory_analysis()
    temp = None if mem is None else int(mem.temp_size_in_bytes)
    return compiled, seconds, temp


def flops_of(compiled: Any) -> float | None:
    """FLOPs of one call of a compiled program, from XLA's ``cost_analysis()`` (None if it has none)."""
    cost = compiled.cost_analysis()
    cost = cost[0] if isinstance(cost, (list, tuple)) else cost
    return float(cost["flops"]) if cost and cost.get("flops") else None


def jax_impl(
    train_step: Callable,
    carry: Any,
    predict: Callable,
    x: np.ndarray,
    y: np.ndarray,
    logits: Callable[[np.ndarray], np.ndarray],
) -> Impl:
    """Wrap a pure ``train_step(carry, x, y) -> (carry, loss)`` and ``predict(carry, x) -> logits``.

    The carry is donated, as a training loop would; the batch stays on device across steps.
    """
    xd, yd = jax.device_put(x), jax.device_put(y)
    compiled, seconds, temp = compile_jax(train_step, carry, xd, yd, donate=(0,))
    x1 = jax.device_put(x[:1])
    pred = jax.jit(predict)
    box = {"carry": carry}

    def step() -> Any:
        box["carry"], loss = compiled(box["carry"], xd, yd)
        return loss.block_until_ready()

    def infer() -> Any:
        return pred(box["carry"], x1).block_until_ready()

    return Impl(
        step=step,
        infer=infer,
        logits=logits,
        compile_s=seconds,
        temp_bytes=temp,
        extra={"compiled": compiled, "flops": flops_of(compiled), "carry": box},
    )
