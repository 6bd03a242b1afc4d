"""Scale: data parallelism over devices (:mod:`.distributed`) and mixed precision with dynamic loss
scaling (:mod:`.precision`). Recomputation is a layer, :func:`jcnn.layers.remat`."""

from jcnn.scale import precision

__all__ = ["precision"]
