"""Benchmarks for jcnn against a hand-written ``lax`` program, Flax NNX, Equinox and PyTorch eager.

Not collected by pytest and never imported by the library; the peers come from the ``bench`` extra.
Run ``python -m benchmarks.compare`` (``--quick`` for a short run); see ``benchmarks/RESULTS.md``.
"""
