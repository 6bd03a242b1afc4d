"""LeNet-5 (LeCun et al. 1998) for 32×32 inputs: the classic 6-16-120-84 network.

``features``: conv 5×5 → 6, act, pool 2 → conv 5×5 → 16, act, pool 2 (32 → 28 → 14 → 10 → 5);
``classifier`` on the flattened 5·5·16 = 400 features: dense 120, act, dense 84, act, dense ``num_classes``.
Params follow ``torch.nn.Sequential`` naming: ``features.0``, ``features.3``, ``classifier.0``,
``classifier.2``, ``classifier.4`` (torchvision has no LeNet; these are the keys of a twin written the
same way in torch, which flattens ``(C, H, W)``; :mod:`jcnn.interop.torch` reorders ``classifier.0``).
"""

from __future__ import annotations

from collections.abc import Callable

from jcnn import layers as L
from jcnn.layers.base import Layer, constructor
from jcnn.models import _blocks as B


@constructor
def lenet5(num_classes: int = 10, in_channels: int = 1, *, activation: str = "relu", pool: str = "max") -> Layer:
    """LeNet-5: ``(N, 32, 32, in_channels)`` → logits ``(N, num_classes)``.

    ``activation`` is ``"relu"`` or ``"tanh"`` (the 1998 original), ``pool`` is ``"max"`` or ``"avg"``
    (2×2, stride 2; the original subsamples by averaging). Weights use PyTorch's layer defaults.
    """
    B.check_classes("lenet5", num_classes)
    if pool not in ("max", "avg"):
        raise ValueError(f"lenet5: pool must be 'max' or 'avg', got {pool!r}")
    act = B.activation(activation, "lenet5")
    make_pool: Callable[[], Layer] = (lambda: L.MaxPool(2, 2)) if pool == "max" else (lambda: L.AvgPool(2, 2))
    features = B.sequential(L.Conv(6, (5, 5)), act, make_pool(), L.Conv(16, (5, 5)), act, make_pool())
    classifier = B.sequential(L.Dense(120), act, L.Dense(84), act, L.Dense(num_classes))
    model = L.serial(("features", features), ("flatten", B.as_layer(L.Flatten)), ("classifier", classifier))
    return B.expect_input(model, "lenet5", in_channels)
