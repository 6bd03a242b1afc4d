"""PyTorch eager twins (torchvision's architectures and ``state_dict`` keys), channels-first and
channels-last (``torch.channels_last`` memory format: the same NCHW tensors, NHWC in memory)."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from benchmarks.impls import common as C


def _unit(cin: int, cout: int, k: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
                         nn.BatchNorm2d(cout), nn.ReLU6())


class LeNet5(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(1, 6, 5), nn.ReLU(), nn.MaxPool2d(2, 2),
                                      nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2, 2))
        self.classifier = nn.Sequential(nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(),
                                        nn.Linear(84, C.NUM_CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(torch.flatten(self.features(x), 1))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(planes)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.downsample = None
        if stride != 1 or cin != planes:
            self.downsample = nn.Sequential(nn.Conv2d(cin, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x)))))
        return self.relu(y + (x if self.downsample is None else self.downsample(x)))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int) -> None:
        super().__init__()
        out = planes * 4
        self.conv1, self.bn1 = nn.Conv2d(cin, planes, 1, bias=False), nn.BatchNorm2d(planes)
        self.conv2, self.bn2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=False), nn.BatchNorm2d(planes)
        self.conv3, self.bn3 = nn.Conv2d(planes, out, 1, bias=False), nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or cin != out:
            self.downsample = nn.Sequential(nn.Conv2d(cin, out, 1, stride, bias=False), nn.BatchNorm2d(out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.bn3(self.conv3(self.relu(self.bn2(self.conv2(y)))))
        return self.relu(y + (x if self.downsample is None else self.downsample(x)))



class ResNet(nn.Module):
    """torchvision's ResNet (ImageNet stem: 7×7/2 conv, 3×3/2 max pool) with ``block`` and ``depths``."""

    def __init__(self, block: type = BasicBlock, depths: tuple[int, ...] = (2, 2, 2, 2),
                 num_classes: int = C.NUM_CLASSES) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        cin = 64
        for i, (planes, depth) in enumerate(zip((64, 128, 256, 512), depths)):
            blocks = []
            for j in range(depth):
                blocks.append(block(cin, planes, (1 if i == 0 else 2) if j == 0 else 1))
                cin = planes * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*blocks))
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(x.mean((2, 3)), 1))


def ResNet18(num_classes: int = C.NUM_CLASSES) -> ResNet:
    return ResNet(BasicBlock, (2, 2, 2, 2), num_classes)


def ResNet50(num_classes: int = C.NUM_CLASSES) -> ResNet:
    return ResNet(Bottleneck, (3, 4, 6, 3), num_classes)


class InvertedResidual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int, t: int) -> None:
        super().__init__()
        hidden = cin * t
        layers = [_unit(cin, hidden, 1)] if t != 1 else []
        layers += [_unit(hidden, hidden, 3, stride, hidden), nn.Conv2d(hidden, cout, 1, bias=False),
                   nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)
        self.use_res = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        features: list[nn.Module] = [_unit(3, 32, 3, 2)]
        cin = 32
        for t, c, n, s in ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1),
                           (6, 160, 3, 2), (6, 320, 1, 1)):
            for i in range(n):
                features.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        features.append(_unit(cin, 1280, 1))
        self.features = nn.Sequential(*features)
        self.classifier = nn.Sequential(nn.Dropout(0.0), nn.Linear(1280, C.NUM_CLASSES))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.classifier(self.features(x).mean((2, 3)))


MODELS = {"lenet5": LeNet5, "resnet18": ResNet18, "mobilenet_v2": MobileNetV2, "resnet50": ResNet50}


def make(model: str, channels_last: bool = False) -> nn.Module:
    net = MODELS[model]()
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
    x1 = xt[:1].contiguous(memory_format=torch.channels_last) if channels_last else xt[:1].contiguous()
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
