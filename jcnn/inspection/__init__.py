"""Inspection: tools that walk a model's declared tree — the table of shapes, parameters and MACs
(:mod:`.summary`), every layer's activation (:mod:`.intermediates`), params by path glob for freezing
and surgery (:mod:`.paths`), and the per-layer figures of ``jcnn inspect`` (:mod:`.report`). The
checks against PyTorch (``jcnn verify``) are :mod:`jcnn.interop.verify`.

``jcnn.summary``, ``jcnn.intermediates``, ``jcnn.feature_extractor`` and ``jcnn.paths`` are re-exported
at the top level.
"""

from jcnn.inspection import intermediates, paths, summary

__all__ = ["intermediates", "paths", "summary"]
