"""PyTorch eager twins: the library's ``jcnn.interop.torch_twins`` (torchvision's architectures and
``state_dict`` keys), channels-first, or channels-last (``torch.channels_last`` memory format on the module
and its inputs: the same NCHW tensors, NHWC in memory)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from benchmarks.impls import common as C
from jcnn.interop import torch_twins


def make(model: str, channels_last: bool = False) -> nn.Module:
    """The twin of ``model`` with the benchmark's classes and channels, dropout 0."""
    if model == "cifar_resnet18":
        net = torch_twins.cifar_resnet18(C.NUM_CLASSES, C.in_channels(model))
    else:
        kw = {
            "mobilenet_v2": {"dropout": 0.0},
            "vgg11_bn": {"dropout": 0.0, "pool_size": 1, "hidden": C.VGG_HIDDEN},
        }.get(model, {})
        net = torch_twins.twin(model, C.NUM_CLASSES, C.in_channels(model), **kw)
    return net.to(memory_format=torch.channels_last) if channels_last else net


def to_input(x: np.ndarray, channels_last: bool) -> torch.Tensor:
    """Channels-last NumPy ``(N, H, W, C)`` → an NCHW tensor (NHWC in memory with ``channels_last``)."""
    t = torch.from_numpy(np.array(x.transpose(0, 3, 1, 2), order="C"))  # a writable copy
    return t.contiguous(memory_format=torch.channels_last) if channels_last else t


def build(model: str, batch: int, size: int, *, seed: int = 0, channels_last: bool = False) -> C.Impl:
    torch.manual_seed(seed)
    net = make(model, channels_last)
    opt = torch.optim.SGD(net.parameters(), lr=C.LR, momentum=C.MOMENTUM)
    x, y = C.example_batch(model, batch, size, seed)
    xt, yt = to_input(x, channels_last), torch.from_numpy(y.astype(np.int64))
    x1 = to_input(x[:1], channels_last)
    loss_fn = nn.CrossEntropyLoss()

    def step() -> float:
        net.train()
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(xt), yt)
        loss.backward()
        opt.step()
        return loss.item()

    def infer() -> torch.Tensor:
        net.eval()
        with torch.inference_mode():
            return net(x1)

    def logits(xb: np.ndarray) -> np.ndarray:
        net.eval()
        with torch.no_grad():
            return net(to_input(xb, channels_last)).numpy()

    return C.Impl(step=step, infer=infer, logits=logits, extra={"net": net})
