"""The training parity ledger: a jcnn model and its PyTorch twin trained side by side, step by step.

:func:`ledger` starts both from the same weights (the torch module's ``state_dict`` through
:func:`~jcnn.interop.torch.import_state_dict`), feeds both the same seeded batches and trains ``steps``
steps with the same loss and optimizer (``jcnn.optim.<name>`` against ``torch.optim.<Name>`` with the
same hyperparameters). Steps are numbered from 1. After each step it compares, per layer path (jcnn's
paths are torch's module names), in this order:

1. ``activation``: each layer's output in the train-mode forward (:func:`jcnn.inspection.intermediates.capture`
   against torch forward hooks; a module called twice is compared at its first call), then the model's
   output (path ``""``);
2. ``loss``;
3. ``gradient`` of every parameter, the last layer first (the order backward computes them);
4. ``running_stat``: floating buffers (BatchNorm's running mean and variance) after the step;
5. ``optimizer_state``: each buffer against torch's ``optimizer.state[p]`` (``momentum_buffer``,
   ``exp_avg``, ``exp_avg_sq``, …) and the step counter;
6. ``param`` after the update.

Each comparison is ``max |a − e|`` and the normwise ``max |a − e| / max |e|``, against a tolerance per
dtype. Except for activations and the loss, the denominator is at least ``FLOOR`` times the largest
value of that quantity in the whole model at that step: some tensors are rounding noise on both sides
(the gradient of a bias before a train-mode BatchNorm is exactly zero, and so that bias stays 0 plus
noise; the running mean of a BatchNorm after a 1×1 conv of BatchNorm outputs is 0 plus noise). The
verdict is the first entry over tolerance in that order — the step, layer path and quantity where the
two implementations part — with both values at the worst element. With ``control=True`` a torch copy
started one ulp away measures how much training itself amplifies rounding (see :func:`ledger`).

``result.table()``, ``result.to_json()`` and ``jcnn verify --train MODEL`` (the figure too) are in
:mod:`jcnn.interop.ledger_report`. Importing this module imports torch.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import inspect
import math
import time
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple, TypeGuard

import jax
import jax.numpy as jnp
import numpy as np
import torch
import torch.nn.functional as F

import jcnn
from jcnn._types import Shape, ShapeTree
from jcnn.inspection.intermediates import capture
from jcnn.interop.manifest import CHECK_PRECISION, numerics_manifest, numerics_warnings
from jcnn.interop.torch import export_state_dict, import_state_dict
from jcnn.layers.base import Layer, is_shape
from jcnn.layers.structure import walk

TOLERANCES = {"float32": 1e-4, "float64": 1e-10}  # float32: the zoo tests' tolerance
"""The default relative tolerance of an entry per dtype (``tolerance=`` overrides it)."""
CONTROL_FACTOR = 100.0
"""With ``control=True`` an entry also passes when its error is within this factor of the torch-vs-torch
control run's error at the same (step, path, quantity)."""
FLOOR = 1e-2
"""For every quantity but activations and the loss, the denominator of a relative error is at least this
fraction of the largest magnitude of that quantity in the model (rounding-noise tensors near zero)."""
QUANTITIES = ("activation", "loss", "gradient", "running_stat", "optimizer_state", "param")
"""What is compared at each step, in computation order (the order of a step's entries)."""
LOSSES = ("cross_entropy", "mse")
OPTIMIZERS = {
    "sgd": ("SGD", {"momentum": 0.9}),
    "adam": ("Adam", {}),
    "adamw": ("AdamW", {}),
    "rmsprop": ("RMSprop", {}),
    "adagrad": ("Adagrad", {}),
    "adadelta": ("Adadelta", {}),
    "adamax": ("Adamax", {}),
    "nadam": ("NAdam", {}),
}
"""``optimizer`` name → (the ``torch.optim`` class, hyperparameters added to both sides' defaults)."""
# Small steps on purpose: the ledger checks parity, not training, and larger steps amplify rounding faster
# (see ``control``; ResNet-18 at batch 8 crosses 1e-10 in float64 at step 20 with sgd 1e-3, stays at 3e-13
# with 1e-4); adadelta's own steps start tiny.
DEFAULT_LR = {
    "sgd": 1e-4,
    "adam": 1e-4,
    "adamw": 1e-4,
    "rmsprop": 1e-4,
    "adagrad": 1e-3,
    "adadelta": 1.0,
    "adamax": 2e-4,
    "nadam": 2e-4,
}
"""The learning rate per optimizer when ``lr`` is not given: small, since the ledger checks parity and
larger steps amplify rounding."""
# jcnn optimizer state field (jcnn.optim.alias) -> torch optimizer.state[p] key
STATE_KEYS = {
    "momentum_buffer": "momentum_buffer",
    "mu": "exp_avg",
    "nu": "exp_avg_sq",
    "nu_max": "max_exp_avg_sq",
    "sum": "sum",
    "square_avg": "square_avg",
    "grad_avg": "grad_avg",
    "acc_delta": "acc_delta",
    "inf_norm": "exp_inf",
}


class Entry(NamedTuple):
    """One comparison: ``tensor`` is the torch key (``features.0.weight``, ``output``, ``loss``, ``step``),
    ``index`` the worst element, ``jcnn``/``torch`` the values there; ``control`` the relative error of
    the torch control run at the same (step, path, quantity) (NaN without ``control=True``)."""

    step: int
    path: str
    quantity: str
    tensor: str
    max_abs: float
    max_rel: float
    index: tuple[int, ...]  # type: ignore[assignment]  # public field; NamedTuple's ``index`` shadows tuple.index
    jcnn: float
    torch: float
    passed: bool
    control: float = math.nan


class LedgerResult(NamedTuple):
    """What :func:`ledger` found. ``entries`` are in the ledger's order (module docstring), one per
    ``(step, path, quantity)`` (the worst tensor of that layer); ``losses`` is ``[(jcnn, torch)]`` per step;
    ``unmatched`` the layer paths and tensors compared on one side only."""

    model: str
    config: dict[str, Any]
    tolerance: float
    entries: list[Entry]
    losses: list[tuple[float, float]]
    unmatched: dict[str, Any]
    manifest: dict[str, Any]
    warnings: list[str]
    seconds: float

    @property
    def verdict(self) -> Entry | None:
        """The first entry over tolerance (``None`` when every quantity agrees)."""
        return next((e for e in self.entries if not e.passed), None)

    @property
    def passed(self) -> bool:
        """True when every entry is within tolerance (no :attr:`verdict`)."""
        return self.verdict is None

    def table(self) -> str:
        """The text report (:func:`jcnn.interop.ledger_report.format_ledger`)."""
        from jcnn.interop.ledger_report import format_ledger

        return format_ledger(self)

    def to_json(self) -> dict[str, Any]:
        """JSON-ready data (:func:`jcnn.interop.ledger_report.ledger_json`)."""
        from jcnn.interop.ledger_report import ledger_json

        return ledger_json(self)


# ---------------------------------------------------------------------------------------------- comparing


def compare(actual: Any, expected: Any, floor: float = 0.0) -> tuple[float, float, tuple[int, ...], float, float]:
    """``(max |a − e|, max |a − e| / max(max |e|, floor), worst index, a there, e there)`` in float64; a NaN
    anywhere is the worst element (the errors are then NaN); shapes must agree (else ``ValueError``)."""
    a, e = np.asarray(actual, np.float64), np.asarray(expected, np.float64)
    if a.shape != e.shape:
        raise ValueError(f"shape {a.shape} differs from torch's {e.shape}")
    if not a.size:
        return 0.0, 0.0, (), math.nan, math.nan
    diff = np.subtract(a, e, out=np.empty(a.shape))  # no copies of (transposed) inputs; 0-d stays an array
    np.abs(diff, out=diff)
    flat = int(np.argmax(diff))  # NumPy's argmax stops at the first NaN
    index = tuple(int(i) for i in np.unravel_index(flat, a.shape))
    err = float(diff.flat[flat])
    scale = max(float(e.max()), -float(e.min()), floor)  # max |e| without a temporary
    rel = err / scale if scale > 0 else err
    return err, rel, index, float(a.flat[flat]), float(e.flat[flat])


def _worse(a: float, b: float) -> bool:
    """``a`` is a worse relative error than ``b`` (NaN is the worst)."""
    return (math.isnan(a) and not math.isnan(b)) or (not math.isnan(b) and a > b)


# ---------------------------------------------------------------------------------------------- layouts

_Layout = tuple[tuple[int, ...], int]
"""The ``(spatial S, channels C)`` of a channels-last flatten of ``(N, *S, C)``."""


def _is_flat(shape: ShapeTree | None) -> TypeGuard[Shape]:
    """One shape (a tuple of ints), not a tuple of shapes (:func:`jcnn.layers.base.is_shape`)."""
    return is_shape(shape)


def _torch_input(x: np.ndarray) -> np.ndarray:
    """jcnn ``(N, *S, C)`` → torch ``(N, C, *S)`` (2-D inputs as they are)."""
    return np.ascontiguousarray(np.moveaxis(x, -1, 1) if x.ndim >= 3 else x)


def _flatten_layouts(layer: Layer, input_shape: Shape) -> dict[str, _Layout]:
    """``{path: (S, C)}`` for the layers whose output is a channels-last flatten of ``(N, *S, C)`` (and the
    shape-preserving layers after it, up to a Dense): torch flattens ``(N, C, *S)``, so their torch
    outputs are reordered before the comparison. A combinator takes its last leaf's layout."""
    nodes = walk(layer, input_shape)
    leaf_layout: dict[int, _Layout | None] = {}
    pending: _Layout | None = None
    for i, n in enumerate(nodes):
        # one shape in and out (not the tuples of shapes of a concat or add: math.prod would fail on them)
        if not n.is_leaf or not _is_flat(n.input_shape) or not _is_flat(n.output_shape):
            continue
        s, o = n.input_shape, n.output_shape
        if len(s) >= 3 and len(o) == 2 and o[1] == math.prod(s[1:]) and math.prod(s[1:-1]) > 1:
            pending = (tuple(s[1:-1]), s[-1])
        elif n.layer.kind == "Dense" or tuple(o) != tuple(s):
            pending = None
        leaf_layout[i] = pending
    out: dict[str, _Layout] = {}
    for i, n in enumerate(nodes):
        last = i
        for j in range(i + 1, len(nodes)):
            if nodes[j].depth <= n.depth:
                break
            last = j
        while last >= i and last not in leaf_layout:
            last -= 1
        layout = leaf_layout[last] if last >= i else None
        if layout is not None and n.path:
            out[n.path] = layout
    return out


def _jcnn_layout(t: np.ndarray, layout: _Layout | None, like: tuple[int, ...]) -> np.ndarray:
    """A torch activation in jcnn's layout (``like`` is jcnn's shape): channels last, a ``(C, *S)`` flatten
    reordered to ``(*S, C)``, and size-1 axes dropped or added where only they differ (torch's global
    pooling keeps ``(N, C, 1, 1)``, jcnn's gives ``(N, C)``)."""
    if layout is not None and t.ndim == 2:
        spatial, c = layout
        t = np.moveaxis(t.reshape(t.shape[0], c, *spatial), 1, -1).reshape(t.shape[0], -1)
    elif t.ndim >= 3:
        t = np.moveaxis(t, 1, -1)
    if t.shape != tuple(like) and [d for d in t.shape if d != 1] == [d for d in like if d != 1]:
        t = t.reshape(like)
    return t


# ---------------------------------------------------------------------------------------------- the two sides


_TorchOptimizerFactory = Callable[[list[torch.nn.Parameter]], Any]
"""A torch optimizer over a parameter list."""


def _optimizers(name: str, lr: float, hyper: dict[str, Any]) -> tuple[Any, _TorchOptimizerFactory, dict[str, Any]]:
    """The jcnn optimizer, a factory of the torch one over a parameter list, and the hyperparameters."""
    if name not in OPTIMIZERS:
        raise ValueError(f"ledger: unknown optimizer {name!r}; expected one of {', '.join(OPTIMIZERS)}")
    torch_class, defaults = OPTIMIZERS[name]
    kw = {**defaults, **hyper}
    ours = _jcnn_optimizer(getattr(jcnn.optim, name), float(lr), tuple(sorted(kw.items())))
    theirs = dict(kw)
    if "b1" in theirs or "b2" in theirs:
        theirs["betas"] = (theirs.pop("b1", 0.9), theirs.pop("b2", 0.999))

    def make_torch(parameters: list[torch.nn.Parameter]) -> Any:
        return getattr(torch.optim, torch_class)(parameters, lr=float(lr), **theirs)

    return ours, make_torch, {"name": name, "lr": float(lr), **kw}


@functools.lru_cache(maxsize=16)
def _jcnn_optimizer(fn: Callable[..., Any], lr: float, kw: tuple[tuple[str, Any], ...]) -> Any:
    """One Optimizer object per (function, hyperparameters), so that the compiled step is reused."""
    return fn(lr, **dict(kw))


def _jcnn_loss(loss: str, y: Any, target: Any) -> Any:
    return jcnn.losses.softmax_cross_entropy(y, target) if loss == "cross_entropy" else jcnn.losses.mse(y, target)


def _torch_loss(loss: str, y: Any, target: Any) -> Any:
    return F.cross_entropy(y, target) if loss == "cross_entropy" else F.mse_loss(y, target)


class _Step(NamedTuple):
    fn: Callable[..., Any]
    init: Callable[[Any], Any]  # the optimizer's init, jitted (eagerly it compiles once per parameter shape)
    order: list[str]  # the activation paths in the order jcnn recorded them (set while tracing)


@functools.lru_cache(maxsize=8)
def _compiled_step(layer: Layer, optimizer: Any, loss: str) -> _Step:
    """One jitted training step per (layer, optimizer, loss): ``(params, state, opt_state, x, target) ->
    (loss, y, activations, grads, new_params, new_state, new_opt_state)``."""
    order: list[str] = []

    def loss_fn(params: Any, state: Any, x: Any, target: Any) -> Any:
        y, new_state, acts = capture(layer, params, state, x, train=True)
        acts = {p: v for p, v in acts.items() if hasattr(v, "shape") and hasattr(v, "dtype")}
        order[:] = list(acts)
        return _jcnn_loss(loss, y, target), (y, new_state, acts)

    def step(params: Any, state: Any, opt_state: Any, x: Any, target: Any) -> Any:
        (value, (y, new_state, acts)), grads = jax.value_and_grad(loss_fn, has_aux=True)(params, state, x, target)
        updates, new_opt = optimizer.update(grads, opt_state, params)
        return value, y, acts, grads, jcnn.optim.apply_updates(params, updates), new_state, new_opt

    return _Step(jax.jit(step), jax.jit(optimizer.init), order)


@functools.lru_cache(maxsize=8)
def _zoo_layer(name: str, num_classes: int, in_channels: int, kwargs: tuple[tuple[str, Any], ...]) -> Layer:
    return jcnn.models.get_model(name, num_classes=num_classes, in_channels=in_channels, **dict(kwargs))


def _check_no_dropout(layer: Layer, module: torch.nn.Module, input_shape: Shape) -> None:
    """Dropout draws different masks in the two frameworks: refuse an active one on either side."""
    for n in walk(layer, input_shape):
        if n.layer.kind == "Dropout" and float(n.layer.hparams.get("rate", 0.0)) > 0:
            raise ValueError(
                f"ledger: layer {n.path or '<root>'!r} is a Dropout with rate "
                f"{n.layer.hparams['rate']}; the two frameworks draw different masks, so build "
                "the model without dropout (rate 0)"
            )
    for name, m in module.named_modules():
        if isinstance(m, torch.nn.modules.dropout._DropoutNd) and m.p > 0:
            raise ValueError(
                f"ledger: torch module {name!r} is a {type(m).__name__} with p={m.p}; the two "
                "frameworks draw different masks, so set its p to 0"
            )


def _resolve(
    model: Any,
    torch_module: Any,
    input_shape: Any,
    batch: int | None,
    size: int | None,
    num_classes: int,
    model_kwargs: dict[str, Any],
    twin_kwargs: dict[str, Any],
    seed: int,
) -> tuple[str, Layer, torch.nn.Module, Shape, Shape]:
    """``(name, layer, torch module, batch input shape, plan input shape)`` for a zoo name or a Layer."""
    if isinstance(model, str):
        from jcnn.models import MODELS

        if model not in MODELS:
            raise ValueError(f"ledger: unknown model {model!r}; expected a Layer or one of {sorted(MODELS)}")
        info = MODELS[model]
        kwargs = dict(model_kwargs)
        if "dropout" in inspect.signature(info.fn).parameters:
            kwargs.setdefault("dropout", 0.0)
        channels = int(kwargs.pop("in_channels", info.in_channels))
        num_classes = int(kwargs.pop("num_classes", num_classes))
        layer = _zoo_layer(model, num_classes, channels, tuple(sorted(kwargs.items())))
        if input_shape is None:
            side = size or min(32, *info.input_size)
            input_shape = (batch or 8, side, side, channels)
        if torch_module is None:
            from jcnn.interop.torch_twins import twin

            torch.manual_seed(seed)
            try:
                torch_module = twin(model, num_classes, channels, **twin_kwargs)
            except ValueError as err:
                raise ValueError(
                    f"ledger: {err}; pass torch_module= (a torch model with {model}'s state_dict keys)"
                ) from None
            for m in torch_module.modules():  # our twin: switch its dropout off as the jcnn model's
                if isinstance(m, torch.nn.modules.dropout._DropoutNd):
                    m.p = 0.0
        name = model
    elif isinstance(model, Layer):
        if torch_module is None:
            raise ValueError("ledger: a Layer needs its torch counterpart: ledger(layer, torch_module, input_shape)")
        if input_shape is None:
            raise ValueError("ledger: a Layer needs input_shape=(N, *spatial, C) (the batch's shape)")
        if model_kwargs or twin_kwargs:
            raise TypeError("ledger: model_kwargs/twin_kwargs only apply to zoo names")
        layer, name = model, model.kind
    else:
        raise TypeError(f"ledger: model must be a zoo name or a jcnn Layer, got {type(model).__name__}")
    if not isinstance(torch_module, torch.nn.Module):
        raise TypeError(f"ledger: torch_module must be a torch.nn.Module, got {type(torch_module).__name__}")
    shape = tuple(int(s) for s in input_shape)
    if batch is not None:
        shape = (int(batch),) + shape[1:]
    if len(shape) < 2 or min(shape) < 1:
        raise ValueError(f"ledger: input_shape must be (N, *spatial, C) with positive sizes, got {input_shape}")
    return name, layer, torch_module, shape, (1,) + shape[1:]


def _x64_enabled() -> bool:
    return bool(jax.enable_x64.value)


def _check_args(steps: Any, dtype: str, loss: str | None, tolerance: Any) -> None:
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"ledger: steps must be an int >= 1, got {steps!r}")
    if dtype not in TOLERANCES:
        raise ValueError(f"ledger: dtype must be one of {sorted(TOLERANCES)}, got {dtype!r}")
    if loss is not None and loss not in LOSSES:
        raise ValueError(f"ledger: loss must be one of {LOSSES}, got {loss!r}")
    if tolerance is not None and not (isinstance(tolerance, (int, float)) and tolerance > 0):
        raise ValueError(f"ledger: tolerance must be a number > 0, got {tolerance!r}")


# ---------------------------------------------------------------------------------------------- the run


def ledger(
    model: str | Layer,
    torch_module: torch.nn.Module | None = None,
    input_shape: Sequence[int] | None = None,
    *,
    steps: int = 5,
    batch: int | None = None,
    size: int | None = None,
    optimizer: str = "sgd",
    lr: float | None = None,
    optimizer_kwargs: dict[str, Any] | None = None,
    loss: str | None = None,
    dtype: str = "float32",
    tolerance: float | None = None,
    seed: int = 0,
    num_classes: int = 10,
    model_kwargs: dict[str, Any] | None = None,
    twin_kwargs: dict[str, Any] | None = None,
    matmul_precision: str | None = CHECK_PRECISION,
    control: bool = False,
) -> LedgerResult:
    """Train ``model`` and its torch counterpart side by side for ``steps`` steps and compare every layer.

    ``model`` is a zoo name (the torch side is ``jcnn.interop.torch_twins.twin(name, num_classes,
    in_channels, **twin_kwargs)`` seeded with ``seed``, unless ``torch_module`` is given; dropout is set to
    0 on both; inputs ``(batch or 8, size, size, in_channels)`` with ``size`` at most 32 by default) or any
    jcnn Layer with a ``torch_module`` whose ``state_dict`` maps onto it and the batch's ``input_shape``
    ``(N, *spatial, C)`` (``batch`` replaces ``N``). The torch module is copied, not trained in place.

    Batches are standard normal images (NumPy ``default_rng(seed)``) with uniform integer labels for
    ``loss="cross_entropy"`` (the default for ``(N, K)`` outputs) or standard normal targets for ``"mse"``
    (the default otherwise). ``optimizer`` is one of :data:`OPTIMIZERS` with ``lr`` (default
    :data:`DEFAULT_LR`) and ``optimizer_kwargs`` in jcnn's names (``momentum``, ``b1``, ``weight_decay``,
    …; torch gets ``betas=(b1, b2)``); sgd uses momentum 0.9 unless told otherwise. Both sides compute in
    ``dtype`` (float64 needs ``jax_enable_x64``), JAX at ``matmul_precision``; the
    tolerance is :data:`TOLERANCES` ``[dtype]`` unless given.

    Training amplifies rounding differences (at small batches, by up to 30x per step), so over many steps
    even the same computation crosses a tight tolerance. ``control=True`` also trains a second torch copy
    whose parameters start one ulp away and passes an entry whose error is within :data:`CONTROL_FACTOR`
    times that copy's error at the same step, layer and quantity: what remains is more than the dynamics
    (torch runs twice). Returns a :class:`LedgerResult`.
    """
    start = time.perf_counter()
    _check_args(steps, dtype, loss, tolerance)
    name, layer, module, shape, plan_shape = _resolve(
        model,
        torch_module,
        input_shape,
        batch,
        size,
        num_classes,
        dict(model_kwargs or {}),
        dict(twin_kwargs or {}),
        seed,
    )
    if optimizer_kwargs is not None and not isinstance(optimizer_kwargs, dict):
        raise TypeError(f"ledger: optimizer_kwargs must be a dict, got {type(optimizer_kwargs).__name__}")
    lr = DEFAULT_LR.get(optimizer, 1e-3) if lr is None else lr
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (math.isfinite(lr) and lr > 0):
        raise ValueError(f"ledger: lr must be a finite number > 0, got {lr!r}")
    if dtype == "float64" and not _x64_enabled():
        raise ValueError(
            "ledger: dtype='float64' needs 64-bit JAX: jax.config.update('jax_enable_x64', True) "
            "at startup (or JAX_ENABLE_X64=1)"
        )
    ours, make_torch, opt_config = _optimizers(optimizer, lr, dict(optimizer_kwargs or {}))
    result = _run(
        name,
        layer,
        module,
        shape,
        plan_shape,
        steps,
        ours,
        make_torch,
        loss,
        dtype,
        seed,
        matmul_precision,
        bool(control),
    )
    manifest = numerics_manifest()
    entries, losses, unmatched, torch_device = result
    config = {
        "model": name,
        "steps": steps,
        "input_shape": list(shape),
        "optimizer": opt_config,
        "loss": unmatched.pop("loss"),
        "dtype": dtype,
        "seed": seed,
        "matmul_precision": matmul_precision,
        "torch_device": torch_device,
        "control": bool(control),
    }
    tol = float(tolerance if tolerance is not None else TOLERANCES[dtype])
    # NaN fails; with a control, errors within CONTROL_FACTOR of torch against itself are the dynamics
    entries = [e._replace(passed=bool(e.max_rel <= tol or e.max_rel <= CONTROL_FACTOR * e.control)) for e in entries]
    warnings = numerics_warnings(manifest, dtype, torch_device=torch_device, jax_precision=matmul_precision)
    return LedgerResult(name, config, tol, entries, losses, unmatched, manifest, warnings, time.perf_counter() - start)


class _Snapshot(NamedTuple):
    """One side after a step, in torch's names and layouts (activations in jcnn's layout)."""

    acts: dict[str, np.ndarray]  # layer path -> output ("" = the model output)
    loss: np.ndarray
    grads: dict[str, np.ndarray]  # torch key -> gradient
    buffers: dict[str, np.ndarray]  # torch key -> floating buffer (running statistics)
    opt: dict[str, np.ndarray]  # "key:torch state name" -> buffer; "step", "mu_product" -> scalar
    params: dict[str, np.ndarray]  # torch key -> parameter after the update


class _Torch:
    """A torch module, its optimizer and its forward hooks (each named module's first output per step)."""

    def __init__(self, module: torch.nn.Module, make_optimizer: _TorchOptimizerFactory) -> None:
        self.module = module
        self.named = dict(module.named_parameters())
        self.optimizer = make_optimizer(list(self.named.values()))
        self.record: dict[str, torch.Tensor] = {}
        self.handles = [m.register_forward_hook(self._hook(p)) for p, m in module.named_modules() if p]
        module.train()

    def _hook(self, path: str) -> Callable[[Any, Any, Any], None]:
        def fn(mod: Any, inputs: Any, output: Any) -> None:
            if path not in self.record and isinstance(output, torch.Tensor):
                self.record[path] = output.detach().clone()  # before an in-place ReLU rewrites it

        return fn

    def step(
        self,
        x: torch.Tensor,
        target: torch.Tensor,
        loss: str,
        layouts: dict[str, _Layout],
        like: dict[str, tuple[int, ...]],
    ) -> _Snapshot:
        """One training step; ``like`` gives jcnn's activation shapes (for :func:`_jcnn_layout`)."""
        self.record.clear()
        self.optimizer.zero_grad(set_to_none=True)
        y = self.module(x)
        value = _torch_loss(loss, y, target)
        value.backward()
        grads = {k: p.grad.detach().cpu().numpy().copy() for k, p in self.named.items() if p.grad is not None}
        self.optimizer.step()
        self.record[""] = y.detach()
        acts = {p: _jcnn_layout(v.cpu().numpy(), layouts.get(p), like.get(p, ())) for p, v in self.record.items()}
        sd = {k: v.detach().cpu().numpy() for k, v in self.module.state_dict().items()}
        buffers = {k: sd[k] for k, b in self.module.named_buffers() if b.is_floating_point()}
        keys_of = {id(p): k for k, p in self.named.items()}
        opt: dict[str, np.ndarray] = {}
        for p, st in self.optimizer.state.items():
            key = keys_of.get(id(p))
            for name, value_ in st.items():
                if not isinstance(value_, torch.Tensor):
                    continue
                if name in ("step", "mu_product"):
                    opt.setdefault(name, value_.cpu().numpy())
                elif key is not None and name in _TORCH_STATE:
                    opt[f"{key}:{name}"] = value_.detach().cpu().numpy()
        return _Snapshot(acts, value.detach().cpu().numpy(), grads, buffers, opt, {k: sd[k] for k in self.named})

    def close(self) -> None:
        for h in self.handles:
            h.remove()


_TORCH_STATE = set(STATE_KEYS.values())


def _jcnn_snapshot(
    layer: Layer, plan_shape: Shape, order: list[str], out: tuple[Any, ...], keys: dict[str, list[str]]
) -> _Snapshot:
    """The jcnn side of a step in torch's names (``keys``: the torch snapshot's grads/buffers/params keys)."""
    value, y, acts, grads, params, state, opt_state = out

    def export(tree: Any) -> dict[str, np.ndarray]:
        return export_state_dict(layer, tree, state, input_shape=plan_shape)

    acts = {p: acts[p] for p in order if p in acts}
    acts[""] = y
    new = export(params)
    opt: dict[str, np.ndarray] = {}
    for field in getattr(opt_state, "_fields", ()):
        value_ = getattr(opt_state, field)
        if field in STATE_KEYS and value_ is not None:
            for k, v in export(value_).items():
                if k in keys["params"]:
                    opt[f"{k}:{STATE_KEYS[field]}"] = v
    if "count" in getattr(opt_state, "_fields", ()):
        opt["step"] = np.asarray(opt_state.count)
    if "mu_product" in getattr(opt_state, "_fields", ()):
        opt["mu_product"] = np.asarray(opt_state.mu_product)
    return _Snapshot(
        acts,
        np.asarray(value),
        export(grads),
        {k: new[k] for k in keys["buffers"] if k in new},
        opt,
        {k: new[k] for k in keys["params"] if k in new},
    )


_Row = tuple[str, str, str, np.ndarray, np.ndarray, float]
"""``(path, quantity, tensor, ours, theirs, floor)``: one comparison to make."""


def _rows(ours: _Snapshot, theirs: _Snapshot, param_keys: list[str], unmatched: dict[str, Any] | None) -> list[_Row]:
    """``(path, quantity, tensor, ours, theirs, floor)`` in the ledger's order; what only one side has goes
    into ``unmatched`` (when given)."""

    def miss(side: str, items: Any) -> None:
        if unmatched is not None:
            unmatched.setdefault(side, set()).update(items)

    rows: list[_Row] = [
        (p, "activation", "output", ours.acts[p], theirs.acts[p], 0.0) for p in ours.acts if p in theirs.acts
    ]
    miss("jcnn_only", (p for p in ours.acts if p not in theirs.acts))
    miss("torch_only", (p for p in theirs.acts if p not in ours.acts))
    rows.append(("", "loss", "loss", ours.loss, theirs.loss, 0.0))
    floor = _floor(theirs.grads.values())
    rows += [
        (_module(k), "gradient", k, ours.grads[k], theirs.grads[k], floor)
        for k in reversed(param_keys)
        if k in ours.grads and k in theirs.grads
    ]
    floor = _floor(theirs.buffers.values())
    rows += [
        (_module(k), "running_stat", k, ours.buffers[k], v, floor)
        for k, v in theirs.buffers.items()
        if k in ours.buffers
    ]
    miss("torch_only", (k for k in theirs.buffers if k not in ours.buffers))
    rows += [
        ("", "optimizer_state", k, ours.opt[k], theirs.opt[k], 0.0)
        for k in ("step", "mu_product")
        if k in ours.opt and k in theirs.opt
    ]
    names = sorted({k.split(":")[1] for k in theirs.opt if ":" in k})
    floors = {n: _floor(v for k, v in theirs.opt.items() if k.endswith(":" + n)) for n in names}
    for key in param_keys:
        rows += [
            (_module(key), "optimizer_state", f"{key}:{n}", ours.opt[f"{key}:{n}"], theirs.opt[f"{key}:{n}"], floors[n])
            for n in names
            if f"{key}:{n}" in ours.opt and f"{key}:{n}" in theirs.opt
        ]
    miss("jcnn_only", (k for k in ours.opt if k not in theirs.opt and ":" in k))  # torch's SGD keeps no step
    miss("torch_only", (k for k in theirs.opt if k not in ours.opt and ":" in k))
    floor = _floor(theirs.params.values())
    rows += [(_module(k), "param", k, ours.params[k], theirs.params[k], floor) for k in param_keys if k in ours.params]
    miss("torch_only", (k for k in param_keys if k not in ours.params))
    return rows


def _perturbed(module: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``module`` with every parameter one ulp up: the control run."""
    twin_ = copy.deepcopy(module)
    with torch.no_grad():
        for p in twin_.parameters():
            p.copy_(torch.nextafter(p, torch.full_like(p, math.inf)))
    return twin_


def _run(
    name: str,
    layer: Layer,
    module: torch.nn.Module,
    shape: Shape,
    plan_shape: Shape,
    steps: int,
    ours: Any,
    make_torch: _TorchOptimizerFactory,
    loss: str | None,
    dtype: str,
    seed: int,
    matmul_precision: str | None,
    control: bool,
) -> tuple[list[Entry], list[tuple[float, float]], dict[str, Any], str]:
    module = copy.deepcopy(module)
    device = next((p.device for p in module.parameters()), torch.device("cpu"))
    tdtype = getattr(torch, dtype)
    module.to(tdtype)
    _check_no_dropout(layer, module, shape)
    params, state = import_state_dict(layer, module.state_dict(), input_shape=plan_shape)
    cast = jnp.dtype(dtype)

    def to_dtype(tree: Any) -> Any:  # on the host: an eager astype or jnp.asarray compiles once per shape
        return jax.tree_util.tree_map(
            lambda a: jax.device_put(np.asarray(a).astype(cast) if jnp.issubdtype(a.dtype, jnp.floating) else a), tree
        )

    params, state = to_dtype(params), to_dtype(state)
    out_shape = layer.output_shape(shape)
    if not _is_flat(out_shape):  # not a tuple of shapes either
        raise ValueError(f"ledger: {name}'s output must be one array, got output shape {out_shape}")
    loss = loss or ("cross_entropy" if len(out_shape) == 2 else "mse")
    if loss == "cross_entropy" and len(out_shape) != 2:
        raise ValueError(f"ledger: loss='cross_entropy' needs (N, K) logits, {name} gives {out_shape}; use 'mse'")
    step = _compiled_step(layer, ours, loss)

    def precision() -> Any:  # around the jitted calls only: under it, eager ops compile once per shape
        return jax.default_matmul_precision(matmul_precision) if matmul_precision else contextlib.nullcontext()

    with precision():
        opt_state = step.init(params)
    sides = [_Torch(module, make_torch)] + ([_Torch(_perturbed(module), make_torch)] if control else [])
    param_keys = list(sides[0].named)
    layouts = _flatten_layouts(layer, shape)
    rng = np.random.default_rng(seed)
    entries: list[Entry] = []
    losses: list[tuple[float, float]] = []
    unmatched: dict[str, Any] = {}
    try:
        for t in range(1, steps + 1):
            x = rng.standard_normal(shape)
            target: np.ndarray
            if loss == "cross_entropy":
                target = rng.integers(0, out_shape[-1], shape[0])
                t_target = torch.from_numpy(target).to(device)
            else:
                target = rng.standard_normal(out_shape)
                t_target = torch.from_numpy(_torch_input(target)).to(device, tdtype)
            with precision():
                out = jax.device_get(
                    step.fn(params, state, opt_state, jax.device_put(x.astype(cast)), jax.device_put(target))
                )
            params, state, opt_state = out[4:]
            like = {p: np.shape(v) for p, v in out[2].items()}
            like[""] = np.shape(out[1])
            tx = torch.from_numpy(_torch_input(x)).to(device, tdtype)
            theirs = [side.step(tx, t_target, loss, layouts, like) for side in sides]
            keys = {"params": param_keys, "buffers": list(theirs[0].buffers)}
            mine = _jcnn_snapshot(layer, plan_shape, list(step.order), out, keys)
            losses.append((float(mine.loss), float(theirs[0].loss)))
            step_entries = _aggregate(t, _rows(mine, theirs[0], param_keys, unmatched))
            if control:
                reference = {
                    (e.path, e.quantity): e.max_rel
                    for e in _aggregate(t, _rows(theirs[1], theirs[0], param_keys, None))
                }
                step_entries = [e._replace(control=reference.get((e.path, e.quantity), math.nan)) for e in step_entries]
            entries += step_entries
    finally:
        for side in sides:
            side.close()
    unmatched = {
        "jcnn_only": sorted(unmatched.get("jcnn_only", ())),
        "torch_only": sorted(unmatched.get("torch_only", ())),
        "loss": loss,
    }
    return entries, losses, unmatched, str(device)


def _floor(arrays: Any) -> float:
    """``FLOOR`` times the largest magnitude in ``arrays``: the least denominator of a relative error."""
    return FLOOR * max((max(float(a.max()), -float(a.min())) for a in arrays if a.size), default=0.0)


def _module(key: str) -> str:
    key = key.split(":")[0]
    return key.rsplit(".", 1)[0] if "." in key else ""


def _aggregate(t: int, rows: list[_Row]) -> list[Entry]:
    """One entry per (path, quantity), keeping the first-seen order and the worst tensor."""
    out: dict[tuple[str, str], Entry] = {}
    for path, quantity, tensor, a, e, floor in rows:
        try:
            err, rel, index, av, ev = compare(a, e, floor)
        except ValueError as problem:
            err = rel = math.inf
            index, av, ev = (), math.nan, math.nan
            tensor = f"{tensor} ({problem})"
        entry = Entry(t, path, quantity, tensor, err, rel, index, av, ev, True)
        key = (path, quantity)
        if key not in out or _worse(rel, out[key].max_rel):
            out[key] = entry
    return list(out.values())


__all__ = [
    "ledger",
    "LedgerResult",
    "Entry",
    "compare",
    "TOLERANCES",
    "CONTROL_FACTOR",
    "FLOOR",
    "OPTIMIZERS",
    "QUANTITIES",
    "DEFAULT_LR",
]
