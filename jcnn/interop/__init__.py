"""Interop with other frameworks: :mod:`jcnn.interop.torch` maps PyTorch ``state_dict`` s to jcnn
params/state and back (torch is imported only where a function needs it)."""
