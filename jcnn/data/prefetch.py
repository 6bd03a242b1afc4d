"""Prefetching: the next batches are prepared in a background thread while the device runs the step.

``prefetch_batches(batches, size)`` iterates ``batches`` in one producer thread — where the host work
happens: indexing, decoding image files (:class:`jcnn.data.FolderImages`), any host-side augmentation
in the source — then moves each batch to the device with ``jax.device_put``, and hands it over through
a queue of at most ``size`` batches. One producer and a FIFO queue: the batches come out in exactly the
source's order, whatever the timing, so training with and without prefetch is bit for bit the same.

Shutdown: the iterator closes at the end of the source, on an error in the producer (raised in the
consumer, at the position of the batch that failed), on :meth:`Prefetcher.close` or ``with``, and when
it is garbage collected (a ``break`` or an exception such as ``KeyboardInterrupt`` leaving the loop).
Closing stops the producer at its next batch (a batch being prepared is finished, then dropped) and
joins it; the producer never blocks for longer than 50 ms without checking whether it should stop.
"""

from __future__ import annotations

import queue
import threading
import weakref
from collections.abc import Callable, Iterable, Iterator
from typing import Any, Generic, TypeVar

import jax

_T = TypeVar("_T")
_POLL_S = 0.05
_JOIN_S = 30.0
_ITEM, _END, _ERROR = "item", "end", "error"
# (kind, payload): (_ITEM, a batch), (_END, None) or (_ERROR, the exception the producer raised)
_Queue = queue.Queue[tuple[str, Any]]


def _put(q: _Queue, stop: threading.Event, message: tuple[str, Any]) -> bool:
    while not stop.is_set():
        try:
            q.put(message, timeout=_POLL_S)
            return True
        except queue.Full:
            continue
    return False


def _produce(source: Iterable[Any], transform: Callable[[Any], Any] | None, q: _Queue, stop: threading.Event) -> None:
    try:
        for item in source:
            if stop.is_set():
                return
            if transform is not None:
                item = transform(item)
            if not _put(q, stop, (_ITEM, item)):
                return
        _put(q, stop, (_END, None))
    except BaseException as exc:  # noqa: BLE001 - forwarded to the consumer thread, which raises it
        _put(q, stop, (_ERROR, exc))


def _shutdown(q: _Queue, stop: threading.Event, thread: threading.Thread) -> None:
    stop.set()
    while True:  # free the batches (device buffers) still queued, and unblock a waiting put
        try:
            q.get_nowait()
        except queue.Empty:
            break
    if thread is not threading.current_thread():
        thread.join(_JOIN_S)


class Prefetcher(Generic[_T]):
    """An iterator over ``source``'s items, each prepared ``size`` items ahead in a background thread
    and passed through ``transform`` there (default ``jax.device_put``: the arrays are on the device
    when the step asks for them). See the module docstring for order and shutdown."""

    def __init__(
        self,
        source: Iterable[_T],
        size: int = 2,
        *,
        transform: Callable[[_T], Any] | None = jax.device_put,
        name: str = "jcnn-prefetch",
    ) -> None:
        if not isinstance(size, int) or isinstance(size, bool) or size < 1:
            raise ValueError(f"prefetch: size must be an int >= 1 (batches prepared ahead), got {size!r}")
        self._source = source
        self._queue: _Queue = queue.Queue(maxsize=size)
        self._stop = threading.Event()
        self._thread = threading.Thread(
            target=_produce, args=(source, transform, self._queue, self._stop), name=name, daemon=True
        )
        self._closed = False
        # The thread holds the queue and the event, never this object: dropping the iterator stops it.
        self._finalizer = weakref.finalize(self, _shutdown, self._queue, self._stop, self._thread)
        self._thread.start()

    def __iter__(self) -> Iterator[Any]:
        return self

    def __len__(self) -> int:
        return len(self._source)  # type: ignore[arg-type]  # an unsized source raises len()'s TypeError

    def __next__(self) -> Any:
        if self._closed:
            raise StopIteration
        while True:
            try:
                kind, value = self._queue.get(timeout=_POLL_S)
                break
            except queue.Empty:
                if self._thread.is_alive():
                    continue
                try:  # the producer may have queued its last message just before it ended
                    kind, value = self._queue.get_nowait()
                    break
                except queue.Empty:
                    self.close()
                    raise RuntimeError("prefetch: the producer thread ended without a result") from None
        if kind == _ITEM:
            return value
        self.close()
        if kind == _END:
            raise StopIteration
        raise value

    def close(self) -> None:
        """Stop the producer, drop the batches it prepared, and wait for its thread to end."""
        self._closed = True
        self._finalizer()

    @property
    def alive(self) -> bool:
        """Whether the producer thread is still running."""
        return self._thread.is_alive()

    def __enter__(self) -> Prefetcher[_T]:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()


def prefetch_batches(
    source: Iterable[_T], size: int = 2, *, transform: Callable[[_T], Any] | None = jax.device_put
) -> Iterable[Any]:
    """``source`` itself when ``size == 0``, else a :class:`Prefetcher` keeping ``size`` items ready."""
    if not isinstance(size, int) or isinstance(size, bool) or size < 0:
        raise ValueError(f"prefetch: size must be an int >= 0 (batches prepared ahead; 0: none), got {size!r}")
    if size == 0:
        return source
    return Prefetcher(source, size, transform=transform)
