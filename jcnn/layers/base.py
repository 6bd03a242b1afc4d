"""The Layer protocol: a pair of pure functions plus the layer's structure, declared as data.

``init(key, input_shape) -> (output_shape, params, state)`` checks the full input shape (batch first,
possibly ``-1``) and builds the pytrees; ``apply(params, state, x, *, train, key=None) -> (y, new_state)``
is pure and never mutates. Besides the two functions a :class:`Layer` carries its ``kind`` (the
constructor's name, ``"Conv"``), its ``hparams`` (the constructor's arguments), its named ``children``
and closed-form shape rules: :meth:`Layer.output_shape` for every layer and :meth:`Layer.wiring` (the
input shape each child sees) for combinators. ``summary``, ``interop.torch``, ``plots``, ``intermediates``
and parameter validation all walk that declared tree (:mod:`jcnn.layers.structure`); nothing traces a
model to guess its structure. A layer built by hand, ``Layer(init, apply)``, still works: its shapes come
from ``jax.eval_shape`` of its ``init``.

``Layer.init`` and ``Layer.apply`` wrap the functions given to the constructor:

- the outermost ``init`` checks the key; under ``jax.jit`` a tree of jcnn layers is initialised by one host
  callback that runs the eager init (so a jitted init equals the eager one and compiles nothing large);
- the outermost ``apply`` checks ``train`` (a Python bool), ``key``, the input (arrays, not lists or
  complex numbers) and compares ``params``/``state`` with what ``init`` makes for that input, naming every
  missing, unexpected and wrong-shaped path (at trace time: free under ``jit``);
- combinators call their children through :func:`init_child` / :func:`apply_child`, which keep the
  dotted path of the running layer: errors are prefixed with it and ``jcnn.intermediates`` records each
  layer's output under it.
"""

from __future__ import annotations

import functools
import inspect
import re
import threading
import types
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any, TypeVar, cast, overload

import jax
import jax.numpy as jnp
import numpy as np

from jcnn import _host_random as H
from jcnn._types import Params, PRNGKey, Shape, ShapeTree, State

_buffer_callback: Callable[..., Any] | None  # a callback that writes into XLA's own output buffers
try:
    from jax.experimental.buffer_callback import buffer_callback as _buffer_callback
except ImportError:  # pragma: no cover - a jax older than buffer_callback: results are copied out
    _buffer_callback = None

InitFn = Callable[[PRNGKey, ShapeTree], "tuple[ShapeTree, Params, State]"]
ApplyFn = Callable[..., "tuple[Any, State]"]
ShapeFn = Callable[[ShapeTree], ShapeTree]
WiringFn = Callable[[ShapeTree], "tuple[ShapeTree, tuple[ShapeTree, ...]]"]
# Only leaves declare a MAC count, so the rule sees one input and one output shape (batch 1).
MacsFn = Callable[[Shape, Shape], int]
Child = "tuple[str | None, Layer]"
_T = TypeVar("_T")

# The batch size used to probe ``apply`` with ``jax.eval_shape`` when the batch is ``-1``.
_PROBE_BATCH = 1
_NO_ARGS = inspect.Signature()


class _Context(threading.local):
    """Per-thread state of the running init/apply: nesting depths, the child-name path, a capture."""

    def __init__(self) -> None:
        self.init_depth = 0
        self.apply_depth = 0
        self.path: list[str] = []
        self.capture: Any = None  # an object with .record(path, value) while jcnn.intermediates runs


_CTX = _Context()


class Layer:
    """A layer: ``init(key, input_shape) -> (output_shape, params, state)`` and
    ``apply(params, state, x, *, train, key=None) -> (y, new_state)``, plus its declared structure.

    ``Layer(init, apply)`` wraps two functions written by hand (it unpacks like jax's stax pair:
    ``init, apply = layer``). jcnn's own constructors also declare ``kind``, ``hparams``, ``children``
    (``(name, layer)`` pairs; a ``None`` name shares the parent's params level), the output-shape rule
    ``shape(input_shape)``, a combinator's ``wiring(input_shape) -> (output_shape, child_input_shapes)``,
    the multiply-accumulate count ``macs(input_shape, output_shape)``, and ``host_init`` (init draws
    randomness only through :mod:`jcnn.initializers` and :func:`split_key`).
    """

    __slots__ = (
        "_init_fn",
        "_apply_fn",
        "kind",
        "hparams",
        "children",
        "_shape_fn",
        "_wiring_fn",
        "_macs_fn",
        "host_init",
        "_prefix",
        "_signature",
        "_hint",
        "__weakref__",
    )

    def __init__(
        self,
        init: InitFn,
        apply: ApplyFn,
        *,
        kind: str = "layer",
        hparams: Mapping[str, Any] | None = None,
        children: Sequence[Any] = (),
        shape: ShapeFn | None = None,
        wiring: WiringFn | None = None,
        macs: MacsFn | None = None,
        host_init: bool = False,
        prefix: str | None = None,
    ) -> None:
        if not callable(init) or not callable(apply):
            raise TypeError(
                f"Layer: init and apply must be callables, got {type(init).__name__} and {type(apply).__name__}"
            )
        self._init_fn = init
        self._apply_fn = apply
        self.kind = kind
        self.hparams: Mapping[str, Any] = types.MappingProxyType(dict(hparams or {}))
        self.children: tuple[tuple[str | None, Layer], ...] = tuple((n, c) for n, c in children)
        self._shape_fn = shape
        self._wiring_fn = wiring
        self._macs_fn = macs
        self.host_init = bool(host_init)
        self._prefix = prefix
        self._signature: inspect.Signature | None = None
        self._hint = ""

    # -- the protocol ---------------------------------------------------------------------------------

    def init(self, key: PRNGKey, input_shape: ShapeTree) -> tuple[ShapeTree, Params, State]:
        """``(output_shape, params, state)`` for ``input_shape`` (batch first, ``-1`` allowed)."""
        ctx = _CTX
        if ctx.init_depth == 0:
            H.check_key(key, f"{self.kind}.init")
            if not H.MODE.abstract and H.MODE.plan is None and self._host_tree():
                if H.is_traced(key):
                    return self._init_by_callback(key, input_shape)
                with H.drawn_ahead(lambda: self._run_init(key, input_shape)):
                    return self._run_init(key, input_shape)
        return self._run_init(key, input_shape)

    def _run_init(self, key: PRNGKey, input_shape: ShapeTree) -> tuple[ShapeTree, Params, State]:
        ctx = _CTX
        ctx.init_depth += 1
        try:
            return self._init_fn(key, input_shape)
        finally:
            ctx.init_depth -= 1

    def apply(
        self, params: Params, state: State, x: Any, *, train: bool, key: PRNGKey | None = None
    ) -> tuple[Any, State]:
        """``(y, new_state)``: pure; ``train`` switches BatchNorm and Dropout; ``key`` feeds randomness."""
        ctx = _CTX
        if ctx.apply_depth == 0:
            who = f"{self.kind}.apply"
            _check_train(who, train)
            if key is not None:
                H.check_key(key, who)
            x = _check_input(who, x)
            problem = _validate(self, params, state, x)
            if problem is not None:
                self._raise_shape_problem(problem, params, state, x, train, key)
        capture = ctx.capture
        if capture is not None and ctx.path and hasattr(capture, "record_input"):
            capture.record_input(".".join(ctx.path), x)
        ctx.apply_depth += 1
        try:
            y, new_state = self._apply_fn(params, state, x, train=train, key=key)
        finally:
            ctx.apply_depth -= 1
        if capture is not None and ctx.path:
            capture.record(".".join(ctx.path), y)
        return y, new_state

    def _raise_shape_problem(
        self, problem: ValueError, params: Params, state: State, x: Any, train: bool, key: Any
    ) -> None:
        """Params whose shapes differ from ``init``'s for this input: the layer's own check (e.g. "channel
        mismatch") names an input problem best, so run it; if it passes, the shapes are still wrong."""
        ctx = _CTX
        ctx.apply_depth += 1
        try:
            self._apply_fn(params, state, x, train=train, key=key)
        except (ValueError, TypeError) as err:
            if isinstance(err, ValueError) and str(err).startswith(f"{self.kind}:"):
                raise err from None
            raise problem from None
        finally:
            ctx.apply_depth -= 1
        raise problem

    def __iter__(self) -> Iterator[Callable[..., Any]]:
        return iter((self.init, self.apply))

    def __len__(self) -> int:
        return 2

    def __getitem__(self, index: int) -> Callable[..., Any]:
        return (self.init, self.apply)[index]

    # -- declared structure ---------------------------------------------------------------------------

    @property
    def prefix(self) -> str:
        """The default child name's stem in combinators: ``"conv"`` → ``"conv_0"`` (snake_case kind; a
        wrapper such as ``remat`` uses its child's)."""
        return self._prefix if self._prefix is not None else default_prefix(self.kind)

    @property
    def declared(self) -> bool:
        """True when the layer has a closed-form shape rule (else shapes come from ``jax.eval_shape``)."""
        return self._shape_fn is not None or self._wiring_fn is not None

    def output_shape(self, input_shape: ShapeTree) -> ShapeTree:
        """The output shape for ``input_shape``, from the declared rule (no tracing, no FLOPs)."""
        input_shape = as_shape_tree(input_shape)
        if self._shape_fn is not None:
            return self._shape_fn(input_shape)
        if self._wiring_fn is not None:
            return self._wiring_fn(input_shape)[0]
        return abstract_init(self, input_shape)[0]

    def wiring(self, input_shape: ShapeTree) -> tuple[ShapeTree, tuple[ShapeTree, ...]] | None:
        """``(output_shape, input shape of each child)`` for a combinator with a declared rule; ``None`` for
        a combinator that does not declare one; ``(output_shape, ())`` for a leaf."""
        input_shape = as_shape_tree(input_shape)
        if self._wiring_fn is not None:
            return self._wiring_fn(input_shape)
        if self.children:
            return None
        return self.output_shape(input_shape), ()

    def macs(self, input_shape: ShapeTree, output_shape: ShapeTree | None = None) -> int | None:
        """Multiply-accumulates of this leaf for one call on ``input_shape`` (batch included; a ``-1`` batch
        counts as 1); ``0`` for layers without products, ``None`` when the layer declares no rule."""
        if self._macs_fn is None:
            return 0 if (self.host_init and not self.children) else None
        input_shape = as_shape_tree(input_shape)
        out = self.output_shape(input_shape) if output_shape is None else output_shape
        return int(self._macs_fn(_batch_one(input_shape), _batch_one(out)))

    def _host_tree(self) -> bool:
        return all(layer.host_init for layer in _init_dependencies(self))

    def _init_by_callback(self, key: PRNGKey, input_shape: ShapeTree) -> tuple[ShapeTree, Params, State]:
        """``init`` under a trace: the eager init on the host, as one ``pure_callback``."""
        input_shape = as_shape_tree(input_shape)
        out, spec = abstract_init(self, input_shape)
        words = jax.random.key_data(key) if jnp.issubdtype(key.dtype, jax.dtypes.prng_key) else key
        if tuple(words.shape) != (2,):
            raise TypeError(
                f"{self.kind}.init: expected one PRNG key, got a batch of shape {tuple(words.shape)}; "
                "use jax.vmap(layer.init, in_axes=(0, None)) for several"
            )

        def run(host_key: Any) -> Any:
            return self._run_init(host_key, input_shape)[1:]

        if _buffer_callback is None:  # an older jax: XLA copies the callback's results out, on one core

            def host(w: Any) -> Any:
                with H.host_values():
                    host_key: Any = np.asarray(w, np.uint32)  # a raw key as NumPy words: no device transfer
                    _, params, state = self.init(host_key, input_shape)
                return jax.tree_util.tree_map(np.asarray, (params, state))

            params, state = jax.pure_callback(host, spec, words, vmap_method="sequential")
            return out, params, state

        def fill(ctx: Any, outputs: Any, w: Any) -> None:
            host_key: Any = np.array(np.asarray(w))  # the key words, copied out of XLA's input buffer
            buffers = [np.asarray(b) for b in jax.tree_util.tree_leaves(outputs)]
            H.init_into(buffers, lambda: run(host_key))

        params, state = _buffer_callback(fill, spec, vmap_method="sequential")(words)
        return out, params, state

    # -- printing -------------------------------------------------------------------------------------

    def __repr__(self) -> str:
        return "\n".join(_format(self))


class ReadyLayer(Layer):
    """A parameterless layer that is also its own constructor: ``Relu`` and ``Relu()`` are one Layer.

    Parameterless layers may be ready values; calling one with no arguments returns it, so code written
    either way (``serial(Flatten, Relu)`` or ``serial(Flatten(), Relu())``) works.
    """

    __slots__ = ()

    def __call__(self, *args: Any, **kwargs: Any) -> Layer:
        if args or kwargs:
            given = ", ".join([repr(a) for a in args] + [f"{k}={v!r}" for k, v in kwargs.items()])
            raise TypeError(
                f"{self.kind}({given}): {self.kind} takes no arguments: it is a ready layer "
                f"({self.kind} and {self.kind}() are the same layer){self._hint}"
            )
        return self


# ---------------------------------------------------------------------------------------------- builders


def make_layer(
    kind: str,
    init: InitFn,
    apply: ApplyFn,
    *,
    children: Sequence[Any] = (),
    hparams: Mapping[str, Any] | None = None,
    shape: ShapeFn | None = None,
    wiring: WiringFn | None = None,
    macs: MacsFn | None = None,
    host_init: bool = False,
    prefix: str | None = None,
) -> Layer:
    """Build a :class:`Layer` with its declared structure (see the class docstring for each field).

    ``host_init=True`` promises that ``init`` draws randomness only through :mod:`jcnn.initializers` and
    :func:`split_key` (every jcnn layer does), which lets ``jax.jit(init)`` run as one host callback.
    """
    return Layer(
        init,
        apply,
        kind=kind,
        hparams=hparams,
        children=children,
        shape=shape,
        wiring=wiring,
        macs=macs,
        host_init=host_init,
        prefix=prefix,
    )


def wrapper(
    kind: str,
    layer: Layer,
    *,
    init: InitFn | None = None,
    apply: ApplyFn | None = None,
    hparams: Mapping[str, Any] | None = None,
    check: Callable[[ShapeTree], ShapeTree] | None = None,
) -> Layer:
    """A layer around one child with the child's params and state (no nesting), shapes and default name:
    ``init``/``apply`` default to the child's, called through :func:`init_child`/:func:`apply_child`;
    ``check(input_shape)`` (returning the shape) runs first in ``init`` and the shape rules.
    ``remat``, ``with_policy`` and the zoo's model roots are wrappers."""
    if not isinstance(layer, Layer):
        raise TypeError(f"{kind}: expected a Layer, got {type(layer).__name__}")
    checked = check or (lambda s: s)

    def default_init(key: PRNGKey, input_shape: ShapeTree) -> tuple[ShapeTree, Params, State]:
        return init_child(None, layer, key, checked(input_shape))

    def default_apply(
        params: Params, state: State, x: Any, *, train: bool, key: PRNGKey | None = None
    ) -> tuple[Any, State]:
        return apply_child(None, layer, params, state, x, train=train, key=key)

    def wiring(input_shape: ShapeTree) -> tuple[ShapeTree, tuple[ShapeTree, ...]]:
        input_shape = checked(input_shape)
        return layer.output_shape(input_shape), (input_shape,)

    if init is not None and check is not None:
        given = init

        def init(key: PRNGKey, input_shape: ShapeTree) -> tuple[ShapeTree, Params, State]:
            return given(key, checked(input_shape))

    return Layer(
        init or default_init,
        apply or default_apply,
        kind=kind,
        hparams=hparams,
        children=((None, layer),),
        wiring=wiring,
        host_init=True,
        prefix=layer.prefix,
    )


def ready_layer(kind: str, init: InitFn, apply: ApplyFn, *, shape: ShapeFn | None = None, hint: str = "") -> ReadyLayer:
    """Build a :class:`ReadyLayer` (a parameterless layer usable as a value or called with no arguments);
    ``hint`` is appended to the error for a call with arguments (e.g. "; for a slope use LeakyRelu(0.1)")."""
    layer = ReadyLayer(init, apply, kind=kind, shape=shape, host_init=True)
    layer._signature = _NO_ARGS
    layer._hint = hint
    return layer


def constructor(fn: Callable[..., Layer]) -> Callable[..., Layer]:
    """Decorate a layer constructor: the Layer it returns gets ``kind = fn.__name__`` and ``hparams`` =
    the call's arguments (defaults filled in), which ``repr`` prints as a call (``Conv(8, 3, stride=2)``)."""
    sig = inspect.signature(fn)
    skip = (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD)

    @functools.wraps(fn)
    def build(*args: Any, **kwargs: Any) -> Layer:
        layer = fn(*args, **kwargs)
        bound = sig.bind(*args, **kwargs)
        bound.apply_defaults()
        hparams = {k: v for k, v in bound.arguments.items() if sig.parameters[k].kind not in skip}
        copy = Layer(
            layer._init_fn,
            layer._apply_fn,
            kind=fn.__name__,
            hparams={**layer.hparams, **hparams},
            children=layer.children,
            shape=layer._shape_fn,
            wiring=layer._wiring_fn,
            macs=layer._macs_fn,
            host_init=layer.host_init,
            prefix=layer._prefix,
        )
        copy._signature = sig
        return copy

    # a marker the combinators read for their "call the constructor" hint
    build.jcnn_constructor = True  # type: ignore[attr-defined]  # functions declare no such attribute
    return build


# ---------------------------------------------------------------------------------------------- children


def init_child(name: str | None, child: Layer, key: PRNGKey, input_shape: ShapeTree) -> tuple[ShapeTree, Params, State]:
    """``child.init`` with ``name`` on the path (for error messages); ``None`` keeps the parent's path."""
    return _with_path(name, lambda: child.init(key, input_shape))


def apply_child(
    name: str | None, child: Layer, params: Params, state: State, x: Any, *, train: bool, key: PRNGKey | None = None
) -> tuple[Any, State]:
    """``child.apply`` with ``name`` on the path: errors name the path and ``jcnn.intermediates`` records
    the child's output under it. Combinators call every child through this."""
    return _with_path(name, lambda: child.apply(params, state, x, train=train, key=key))


def _with_path(name: str | None, run: Callable[[], _T]) -> _T:
    if name is None:
        return run()
    path = _CTX.path
    path.append(name)
    try:
        return run()
    except (ValueError, TypeError) as exc:
        if type(exc) in (ValueError, TypeError) and not getattr(exc, "_jcnn_path", False) and exc.args:
            exc.args = (f"{'.'.join(path)}: {exc.args[0]}",) + exc.args[1:]
            # a marker on the exception itself (its traceback and chaining stay as raised)
            exc._jcnn_path = True  # type: ignore[union-attr]  # ValueError/TypeError declare no such attribute
        raise
    finally:
        path.pop()


def current_path() -> str:
    """The dotted path of the layer running now (``""`` at the top)."""
    return ".".join(_CTX.path)


def capturing() -> bool:
    """True while ``jcnn.intermediates`` records layer outputs (``remat`` then runs its block plainly)."""
    return _CTX.capture is not None


def param_keys(layer: Layer) -> set[str] | None:
    """The keys a combinator's params dict has (its children's names, inline children's keys resolved),
    ``None`` when they are not known without ``init`` (a leaf, or a wrapper of a leaf)."""
    if not layer.children:
        return None
    keys: set[str] = set()
    for name, child in layer.children:
        if name is not None:
            keys.add(name)
            continue
        sub = param_keys(child)
        if sub is None:
            return None
        keys |= sub
    return keys


def _init_dependencies(layer: Layer) -> Iterator[Layer]:
    """``layer`` and every layer its init may run: children and Layer-valued hparams, recursively."""
    yield layer
    for _, child in layer.children:
        yield from _init_dependencies(child)
    for value in layer.hparams.values():
        if isinstance(value, Layer):
            yield from _init_dependencies(value)


# ---------------------------------------------------------------------------------------------- shapes


def as_shape_tree(shape: Any) -> ShapeTree:
    """A shape (tuple of ints) or a tuple of shape trees, with lists turned into tuples (hashable)."""
    if isinstance(shape, (tuple, list)):
        if all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) for d in shape):
            return tuple(int(d) for d in shape)
        return tuple(as_shape_tree(s) for s in shape)
    return cast(ShapeTree, shape)  # anything else (e.g. a wrapper's dict of shapes) passes through


def _batch_one(shape: Any) -> Any:
    if is_shape(shape):
        return tuple(1 if (i == 0 and d == -1) else d for i, d in enumerate(shape))
    return tuple(_batch_one(s) for s in shape)


def check_shape(
    name: str,
    input_shape: Any,
    *,
    ndim: int | Sequence[int] | None = None,
    min_ndim: int | None = None,
    what: str = "",
) -> Shape:
    """Validate a single input shape at ``init``: a tuple of ints ``>= 1`` (batch may be ``-1``).

    ``ndim`` fixes the rank (one value or several allowed), ``min_ndim`` bounds it; ``what`` describes the
    expected layout in the error (e.g. ``"(N, *spatial, C)"``).
    """
    if not isinstance(input_shape, (tuple, list)) or not all(
        (isinstance(d, int) or hasattr(d, "__index__")) and not isinstance(d, bool) for d in input_shape
    ):
        raise ValueError(f"{name}: expected one input shape (a tuple of ints), got {input_shape!r}")
    shape = tuple(int(d) for d in input_shape)
    layout = f" {what}" if what else ""
    if ndim is not None:
        allowed = (ndim,) if isinstance(ndim, int) else tuple(ndim)
        if len(shape) not in allowed:
            raise ValueError(
                f"{name}: expected an input of rank {' or '.join(map(str, allowed))}{layout}, "
                f"got shape {shape} (rank {len(shape)})"
            )
    if min_ndim is not None and len(shape) < min_ndim:
        raise ValueError(
            f"{name}: expected an input of rank >= {min_ndim}{layout}, got shape {shape} (rank {len(shape)})"
        )
    if shape and not (shape[0] >= 1 or shape[0] == -1):
        raise ValueError(f"{name}: the batch dim must be >= 1 or -1, got shape {shape}")
    if any(d < 1 for d in shape[1:]):
        raise ValueError(f"{name}: every non-batch dim must be >= 1, got shape {shape}")
    return shape


def is_shape(shape: Any) -> bool:
    """True for one shape (a tuple of ints), False for a tuple of shapes."""
    return isinstance(shape, (tuple, list)) and all(
        (isinstance(d, int) or hasattr(d, "__index__")) and not isinstance(d, bool) for d in shape
    )


def _concrete(shape: Any) -> Any:
    """Replace a ``-1`` batch with the probe batch, recursively over tuples of shapes."""
    if is_shape(shape):
        return tuple(_PROBE_BATCH if (i == 0 and d == -1) else d for i, d in enumerate(shape))
    return tuple(_concrete(s) for s in shape)


def _symbolic(shape: Any, had_unknown_batch: bool) -> ShapeTree:
    if is_shape(shape):
        if had_unknown_batch and shape and shape[0] == _PROBE_BATCH:
            return (-1,) + tuple(shape[1:])
        return tuple(shape)
    return tuple(_symbolic(s, had_unknown_batch) for s in shape)


def _has_unknown_batch(shape: Any) -> bool:
    if is_shape(shape):
        return bool(shape) and shape[0] == -1
    return any(_has_unknown_batch(s) for s in shape)


def _shape_struct(shape: Sequence[int], dtype: Any) -> jax.ShapeDtypeStruct:
    """``jax.ShapeDtypeStruct(shape, dtype)``, typed (jax 0.10's ``ShapeDtypeStruct.__init__`` has no
    annotations, so strict mypy rejects each direct call)."""
    return jax.ShapeDtypeStruct(shape, dtype)


def infer_output_shape(
    apply: ApplyFn, params: Params, state: State, input_shape: ShapeTree, dtype: Any = jnp.float32
) -> ShapeTree:
    """Output shape of ``apply`` by ``jax.eval_shape`` (no FLOPs), for layers without a shape rule and for
    the contract tests that check every declared rule against it. A ``-1`` batch is probed with a
    concrete batch and reported back as ``-1``."""
    unknown = _has_unknown_batch(input_shape)
    concrete = _concrete(input_shape)

    def spec(s: Any) -> Any:
        if is_shape(s):
            return _shape_struct(tuple(s), dtype)
        return tuple(spec(t) for t in s)

    def run(p: Params, st: State, x: Any) -> Any:
        return apply(p, st, x, train=False)[0]

    out = jax.eval_shape(run, params, state, spec(concrete))
    if isinstance(out, (tuple, list)):
        shapes: Any = tuple(tuple(a.shape) for a in out)
    else:
        shapes = tuple(out.shape)
    return _symbolic(shapes, unknown)


_AbstractInit = tuple[ShapeTree, tuple[Any, Any]]
_ABSTRACT: weakref.WeakKeyDictionary[Layer, dict[ShapeTree, _AbstractInit]] = weakref.WeakKeyDictionary()
_ABSTRACT_LOCK = threading.Lock()


def abstract_init(layer: Layer, input_shape: ShapeTree) -> _AbstractInit:
    """``(output_shape, (params, state))`` of ``layer.init`` with ``jax.ShapeDtypeStruct`` leaves, with no
    values drawn or computed: a host-drawing tree's planning pass (see ``_host_random.planning``), else init
    under ``jax.eval_shape``. Cached per layer and input shape."""
    shape = as_shape_tree(input_shape)
    with _ABSTRACT_LOCK:
        cache = _ABSTRACT.setdefault(layer, {})
        if shape in cache:
            return cache[shape]
    box: dict[str, Any] = {}

    def run(k: Any) -> Any:
        box["out"], params, state = layer.init(k, shape)
        return params, state

    depth, _CTX.init_depth = _CTX.init_depth, 0
    previous = H.MODE.abstract
    try:
        # a host-drawing tree: its planning pass gives the shapes without tracing (5-20x cheaper)
        spec = _planned_spec(layer, run) if layer._host_tree() else None
        if spec is None:
            H.MODE.abstract = True
            spec = jax.eval_shape(run, _shape_struct((2,), jnp.uint32))
    except (
        jax.errors.ConcretizationTypeError,
        jax.errors.TracerArrayConversionError,
        jax.errors.TracerIntegerConversionError,
    ):
        # a hand-written init that needs concrete values (e.g. NumPy on its params): run it for real
        H.MODE.abstract = previous
        box["out"], params, state = layer.init(jax.random.PRNGKey(0), shape)
        spec = jax.tree_util.tree_map(lambda a: _shape_struct(np.shape(a), np.asarray(a).dtype), (params, state))
    finally:
        H.MODE.abstract = previous
        _CTX.init_depth = depth
    result: _AbstractInit = (as_shape_tree(box["out"]), spec)
    with _ABSTRACT_LOCK:
        _ABSTRACT.setdefault(layer, {})[shape] = result
    return result


def _planned_spec(layer: Layer, run: Callable[[Any], Any]) -> Any:
    """The params/state spec of a host-drawing tree from its planning pass (no tracing: placeholders are
    lazily allocated zeros); ``None`` if the plan fails, so the caller traces instead."""
    try:
        with H.planning():
            tree = run(np.zeros(2, np.uint32))
    except Exception:  # noqa: BLE001  # e.g. an init that divides by a drawn value: eval_shape decides
        return None
    return jax.tree_util.tree_map(
        lambda a: _shape_struct(np.shape(a), jax.dtypes.canonicalize_dtype(np.result_type(a))), tree
    )


@overload
def split_key(key: PRNGKey, n: int) -> list[PRNGKey]: ...
@overload
def split_key(key: None, n: int) -> list[None]: ...
@overload
def split_key(key: PRNGKey | None, n: int) -> list[PRNGKey | None]: ...
def split_key(key: PRNGKey | None, n: int) -> list[PRNGKey] | list[None] | list[PRNGKey | None]:
    """``n`` independent keys from ``key`` (``None`` stays ``None`` for every child); equal to
    ``jax.random.split(key, n)``, computed on the host for a concrete key (no compile)."""
    if key is None:
        return [None] * n
    return H.split(key, n)


# ---------------------------------------------------------------------------------------------- checks


def _check_train(who: str, train: Any) -> None:
    if isinstance(train, (bool, np.bool_)):
        return
    if isinstance(train, jax.core.Tracer):
        raise TypeError(
            f"{who}: train must be a Python bool, got a traced value {train}: pass it as a static "
            "argument (jax.jit(f, static_argnames='train')) or close over it"
        )
    raise TypeError(f"{who}: train must be True or False, got {train!r}")


def _is_array(x: Any) -> bool:
    return isinstance(x, (jax.Array, np.ndarray, np.generic, jax.core.Tracer))


def _check_input(who: str, x: Any) -> Any:
    """Arrays (or a tuple of arrays for layers with several inputs); lists of arrays become tuples."""
    if _is_array(x):
        if jnp.issubdtype(x.dtype, jnp.complexfloating):
            raise TypeError(
                f"{who}: complex inputs are not supported (jcnn layers compute on real arrays), "
                f"got dtype {x.dtype}; pass the real and imaginary parts as separate arrays or channels"
            )
        return x
    if isinstance(x, (tuple, list)) and x and all(_is_array(a) or isinstance(a, (tuple, list)) for a in x):
        parts = tuple(_check_input(who, a) for a in x)
        return parts
    hint = "; convert it with jnp.asarray(x)" if isinstance(x, (list, tuple, int, float)) else ""
    raise TypeError(
        f"{who}: expected an array (jax.Array or numpy.ndarray), or a tuple of arrays for a layer "
        f"with several inputs, got {type(x).__name__}{hint}"
    )


class _Symbolic(Exception):
    """A non-batch dim is symbolic (``jax.export``): the params cannot be compared with init's."""


def _shape_tree_of(x: Any) -> ShapeTree:
    """The input's shape tree; a symbolic batch (``jax.export.symbolic_shape``) reads as ``-1``."""
    if _is_array(x):
        dims = []
        for i, d in enumerate(x.shape):
            if isinstance(d, (int, np.integer)):
                dims.append(int(d))
            elif i == 0:
                dims.append(-1)
            else:
                raise _Symbolic
        return tuple(dims)
    return tuple(_shape_tree_of(a) for a in x)


def _path_text(path: tuple[Any, ...]) -> str:
    names = []
    for p in path:
        for attr in ("key", "name", "idx"):
            if hasattr(p, attr):
                names.append(str(getattr(p, attr)))
                break
        else:
            names.append(str(p))
    return ".".join(names)


def _leaf_shapes(tree: Any) -> dict[str, tuple[int, ...]]:
    leaves = jax.tree_util.tree_flatten_with_path(tree)[0]
    return {_path_text(path): tuple(np.shape(leaf)) for path, leaf in leaves}


def tree_differences(given: Any, expected: Any, prefix: str = "") -> tuple[list[str], list[str], list[str]]:
    """``(missing, unexpected, wrong_shape)`` descriptions of ``given`` against ``expected``, by dotted path."""
    got, want = _leaf_shapes(given), _leaf_shapes(expected)
    base = f"{prefix}." if prefix else ""
    missing = [f"{base}{p} (expected shape {want[p]})" for p in want if p not in got]
    unexpected = [f"{base}{p} (shape {got[p]})" for p in got if p not in want]
    wrong = [f"{base}{p}: got shape {got[p]}, expected {want[p]}" for p in want if p in got and got[p] != want[p]]
    return missing, unexpected, wrong


def _validate(layer: Layer, params: Params, state: State, x: Any) -> ValueError | None:
    """Compare ``params``/``state`` with what ``layer.init`` makes for ``x``'s shape, naming every missing,
    unexpected and wrong-shaped path: a structural difference raises ``TypeError`` here; shape-only
    differences are returned as a ``ValueError`` for the caller to raise."""
    try:
        shapes = _shape_tree_of(x)
    except _Symbolic:
        return None
    try:
        _, (p_spec, s_spec) = abstract_init(layer, shapes)
    except Exception:  # noqa: BLE001 - init rejects this input: apply's own checks report it
        return None
    problems: list[str] = []
    structural = False
    for what, given, expected in (("params", params, p_spec), ("state", state, s_spec)):
        missing, unexpected, wrong = tree_differences(given, expected)
        structural = structural or bool(missing or unexpected)
        problems += [f"{what} missing {m}" for m in missing]
        problems += [f"{what} unexpected {u}" for u in unexpected]
        problems += [f"{what} {w}" for w in wrong]
    if not problems:
        return None
    message = (
        f"{layer.kind}.apply: params/state do not match what {layer.kind}.init makes for an input of "
        f"shape {_shape_text(shapes)} ({len(problems)} problem{'s' * (len(problems) > 1)}):\n  " + "\n  ".join(problems)
    )
    if structural:
        raise TypeError(message)
    return ValueError(message)


def _shape_text(shape: Any) -> str:
    return str(shape)


# ---------------------------------------------------------------------------------------------- names


_PREFIX_OVERRIDES = {"PRelu": "prelu", "LPPool": "lp_pool"}


def default_prefix(kind: str) -> str:
    """``"ConvTranspose"`` → ``"conv_transpose"``, ``"BatchNorm"`` → ``"batch_norm"``, ``"serial"`` stays."""
    if kind in _PREFIX_OVERRIDES:
        return _PREFIX_OVERRIDES[kind]
    return re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", kind).lower()


# ---------------------------------------------------------------------------------------------- repr


def _value_text(value: Any) -> str:
    if isinstance(value, Layer):
        text = repr(value)
        return text if "\n" not in text else value.kind
    if isinstance(value, float):
        return repr(value)
    return repr(value)


def _same(a: Any, b: Any) -> bool:
    if a is b:
        return True
    try:
        return bool(type(a) is type(b) and a == b)
    except Exception:  # noqa: BLE001 - arrays and other values without a plain ==
        return False


def call_text(layer: Layer) -> str:
    """``Kind(arg, key=value)``: required arguments by position, others only where not the default
    (initializers, ``*_init``, are left out of the text; they stay in ``hparams``)."""
    sig = layer._signature
    if sig is None:
        return layer.kind
    children = {id(child) for _, child in layer.children}
    parts = []
    for name, param in sig.parameters.items():
        if param.kind in (inspect.Parameter.VAR_POSITIONAL, inspect.Parameter.VAR_KEYWORD):
            continue
        if name not in layer.hparams:
            continue
        value = layer.hparams[name]
        if (isinstance(value, Layer) and id(value) in children) or name.endswith("_init"):
            continue
        if param.default is inspect.Parameter.empty:
            parts.append(
                _value_text(value) if param.kind != inspect.Parameter.KEYWORD_ONLY else f"{name}={_value_text(value)}"
            )
        elif not _same(value, param.default):
            parts.append(f"{name}={_value_text(value)}")
    if not parts and (isinstance(layer, ReadyLayer) or layer.children):
        return layer.kind
    return f"{layer.kind}({', '.join(parts)})"


def _format(layer: Layer) -> list[str]:
    """torch-style lines: ``Kind(args)`` for a leaf; ``Kind(`` + arguments + ``(name): child`` lines + ``)``
    for a layer with children."""
    head = call_text(layer)
    if not layer.children:
        return [head]
    lines = [layer.kind + "("]
    if head != layer.kind:
        lines.append("  " + head[len(layer.kind) + 1 : -1])
    for name, child in _display_children(layer):
        sub = _format(child)
        label = f"({name}): " if name is not None else ""
        lines.append("  " + label + sub[0])
        lines += ["  " + line for line in sub[1:]]
    return lines + [")"]


def _display_children(layer: Layer) -> list[tuple[str | None, Layer]]:
    """Children as printed: an inline combinator child (no name) is replaced by its own children."""
    out: list[tuple[str | None, Layer]] = []
    for name, child in layer.children:
        if name is None and child.children:
            out += _display_children(child)
        else:
            out.append((name, child))
    return out


__all__ = [
    "Layer",
    "ReadyLayer",
    "make_layer",
    "ready_layer",
    "wrapper",
    "constructor",
    "init_child",
    "apply_child",
    "split_key",
    "check_shape",
    "is_shape",
    "infer_output_shape",
    "abstract_init",
    "current_path",
]
