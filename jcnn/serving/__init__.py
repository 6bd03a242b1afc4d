"""Serving: a trained run rebuilt as a classifier (:mod:`.inference`) and exported as a
``jax.export`` artifact with its preprocessing baked in (:mod:`.export`). Imported on demand (``from
jcnn.serving import inference``): ``import jcnn`` does not load them."""
