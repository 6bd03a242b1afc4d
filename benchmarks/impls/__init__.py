"""One module per implementation of the benchmarked models (LeNet-5, ResNet-18, MobileNet v2).

Each module exposes ``build(model, batch, size, *, seed=0) -> Impl`` (see :mod:`benchmarks.impls.common`).
"""
