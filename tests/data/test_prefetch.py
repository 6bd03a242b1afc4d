"""The prefetching thread: the source's order whatever the timing, a bounded lead, errors raised where
they happened, no thread left after a break, an error or Ctrl-C, and fit with prefetch == fit without
(on a lazily decoded image folder)."""

from __future__ import annotations

import _thread
import random
import threading
import time

import jax
import numpy as np
import pytest

import jcnn
from jcnn import optim
from jcnn.data import Prefetcher, batches, image_folder, prefetch_batches
from jcnn.training.train import fit
from tests.data._images import write_separable_folder


def _threads():
    return [t for t in threading.enumerate() if t.name.startswith("jcnn-prefetch")]


def test_same_batches_in_the_same_order_on_the_device():
    x = np.arange(40 * 3, dtype=np.float32).reshape(40, 3)
    y = np.arange(40, dtype=np.int32)
    plain = list(batches(x, y, 6, seed=3, epoch=1))
    ahead = list(prefetch_batches(batches(x, y, 6, seed=3, epoch=1), 3))
    assert len(ahead) == len(plain) == 7
    for (xa, ya), (xb, yb) in zip(ahead, plain):
        assert isinstance(xa, jax.Array) and isinstance(ya, jax.Array)  # device_put in the thread
        np.testing.assert_array_equal(np.asarray(xa), xb)
        np.testing.assert_array_equal(np.asarray(ya), yb)
    assert prefetch_batches(plain, 0) is plain
    assert not _threads()


def test_order_does_not_depend_on_timing():
    jitter = random.Random()  # unseeded on purpose: the timing differs on every run

    def slow_source():
        for i in range(30):
            time.sleep(jitter.uniform(0, 0.003))
            yield i

    got = []
    for i in Prefetcher(slow_source(), 2, transform=lambda v: (v, v * v)):
        time.sleep(jitter.uniform(0, 0.003))
        got.append(i)
    assert got == [(i, i * i) for i in range(30)]


def test_the_producer_stays_at_most_size_ahead():
    produced = []

    def source():
        for i in range(50):
            produced.append(i)
            yield i

    with Prefetcher(source(), 3, transform=None) as it:
        for consumed, _ in enumerate(it, start=1):
            time.sleep(0.01)  # give the producer time to run ahead as far as it can
            # queued (3) + the one being put when the queue is full
            assert len(produced) <= consumed + 3 + 1
            if consumed == 10:
                break
    assert not it.alive


def test_an_error_in_the_producer_is_raised_in_order_and_ends_the_thread():
    def source():
        yield 1
        yield 2
        raise OSError("disk vanished at batch 3")

    got = []
    it = Prefetcher(source(), 2, transform=None)
    with pytest.raises(OSError, match="disk vanished at batch 3"):
        for v in it:
            got.append(v)
    assert got == [1, 2] and not it.alive
    with pytest.raises(StopIteration):
        next(it)


def test_break_close_and_garbage_collection_stop_the_thread():
    def endless():
        i = 0
        while True:
            yield i
            i += 1

    it = Prefetcher(endless(), 2, transform=None)
    assert next(it) == 0 and it.alive
    it.close()
    assert not it.alive
    for v in Prefetcher(endless(), 2, transform=None):
        if v == 3:
            break
    assert not _threads()  # the iterator was dropped with the loop and its finalizer joined the thread
    with pytest.raises(ValueError, match="prefetch: size must be an int >= 1"):
        Prefetcher([], 0)
    with pytest.raises(ValueError, match="prefetch: size must be an int >= 0"):
        prefetch_batches([], -1)


@pytest.mark.skipif(
    threading.current_thread() is not threading.main_thread(), reason="Ctrl-C is delivered to the main thread"
)
def test_ctrl_c_while_waiting_for_a_batch_leaves_no_thread():
    def slow():
        for i in range(100):
            time.sleep(0.2)
            yield i

    timer = threading.Timer(0.1, _thread.interrupt_main)  # as SIGINT: KeyboardInterrupt in the main thread
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        for _ in prefetch_batches(slow(), 2, transform=None):
            pass
    timer.join()
    assert not _threads()


# A tiny CNN: fit compiles it once and reuses the steps for the second call (same model and optimizer).
MODEL = jcnn.serial(jcnn.Conv(4, 3), jcnn.Relu, jcnn.MaxPool(2), jcnn.Flatten, jcnn.Dense(3))
OPTIMIZER = optim.sgd(0.05, momentum=0.9)


def test_fit_with_prefetch_is_fit_without_on_a_lazy_folder(tmp_path, monkeypatch):
    write_separable_folder(tmp_path, per_class=8)
    ds = image_folder(tmp_path, size=8, cache_mb=0, test_fraction=0.25)  # every batch decoded by the thread
    eager = (ds.train_images[:], ds.train_labels)
    store, decoded_in = ds.train_images._store, set()
    get = store.get
    monkeypatch.setattr(store, "get", lambda idx: decoded_in.add(threading.current_thread().name) or get(idx))
    common = dict(epochs=2, batch_size=4, seed=1, progress=False, log=lambda msg: None)
    plain = fit(MODEL, OPTIMIZER, eager, (ds.test_images[:], ds.test_labels), prefetch=0, **common)
    ahead = fit(
        MODEL, OPTIMIZER, (ds.train_images, ds.train_labels), (ds.test_images, ds.test_labels), prefetch=2, **common
    )
    for a, b in zip(jax.tree_util.tree_leaves(ahead.state), jax.tree_util.tree_leaves(plain.state)):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))
    assert [r["train_loss"] for r in ahead.history] == [r["train_loss"] for r in plain.history]
    assert int(ahead.state.step) == 2 * (18 // 4)
    assert "jcnn-prefetch" in decoded_in  # the training batches were decoded in the thread
    assert not _threads()
