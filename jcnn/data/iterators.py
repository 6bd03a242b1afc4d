"""A seeded, shuffling mini-batch iterator over in-memory ``(images, labels)`` NumPy arrays."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np


class Batches:
    """One epoch of mini-batches; iterable (any number of times, always the same order) with a length.

    Yields ``(images[idx], labels[idx])`` NumPy pairs. The order is a permutation drawn from
    ``numpy.random.default_rng([seed, epoch])``, so it depends only on ``seed`` and ``epoch``.
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        batch_size: int,
        *,
        seed: int,
        epoch: int = 0,
        shuffle: bool = True,
        drop_last: bool = False,
    ) -> None:
        if not isinstance(batch_size, (int, np.integer)) or isinstance(batch_size, bool) or batch_size < 1:
            raise ValueError(f"batches: batch_size must be an int >= 1, got {batch_size!r}")
        for what, v in (("seed", seed), ("epoch", epoch)):
            if not isinstance(v, (int, np.integer)) or isinstance(v, bool) or v < 0:
                raise ValueError(f"batches: {what} must be an int >= 0, got {v!r}")
        n = len(images)
        if len(labels) != n:
            raise ValueError(f"batches: {n} images but {len(labels)} labels; they must have the same length")
        if n == 0:
            raise ValueError("batches: the data set is empty")
        if drop_last and batch_size > n:
            raise ValueError(
                f"batches: batch_size {batch_size} > {n} examples with drop_last=True would yield no batch"
            )
        self.images, self.labels = images, labels
        self.batch_size, self.seed, self.epoch = int(batch_size), int(seed), int(epoch)
        self.shuffle, self.drop_last = shuffle, drop_last

    def __len__(self) -> int:
        n = len(self.images)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def order(self) -> np.ndarray:
        """The example indices of this epoch in visiting order, ``(N,)``."""
        n = len(self.images)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, self.epoch]).permutation(n)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        idx = self.order()
        for b in range(len(self)):
            sel = idx[b * self.batch_size : (b + 1) * self.batch_size]
            yield self.images[sel], self.labels[sel]


def batches(
    images: np.ndarray,
    labels: np.ndarray,
    batch_size: int,
    *,
    seed: int,
    epoch: int = 0,
    shuffle: bool = True,
    drop_last: bool = False,
) -> Batches:
    """Mini-batches of one epoch: ``ceil(N / batch_size)`` pairs ``(x (B, ...), y (B,))`` (``floor`` with
    ``drop_last``; the last batch may be smaller otherwise). Deterministic given ``seed`` and ``epoch``;
    each epoch is a fresh permutation; ``shuffle=False`` keeps the stored order.
    """
    return Batches(images, labels, batch_size, seed=seed, epoch=epoch, shuffle=shuffle, drop_last=drop_last)
