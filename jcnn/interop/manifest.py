"""The numerics manifest of a ``jcnn verify`` run: everything outside the code that changes the numbers.

``numerics_manifest()`` reads the versions (Python, NumPy, JAX, jaxlib, torch), the devices of both
frameworks, JAX's default matmul precision and x64 switch, ``XLA_FLAGS`` and the other ``JAX_*``
variables, torch's thread counts, its TF32 switches (``allow_tf32`` and the newer ``fp32_precision``
settings) and its determinism settings. ``numerics_warnings(manifest, dtype, ...)`` names the settings
that alone explain errors far above a dtype's rounding: TF32 in float32 on a GPU (10 mantissa bits, errors
of ~1e-3) on either side, and non-deterministic kernels. ``format_manifest`` prints both.
"""

from __future__ import annotations

import os
import platform
from collections.abc import Sequence
from typing import Any

import jax
import numpy as np

CHECK_PRECISION = "highest"
"""The ``jax.default_matmul_precision`` the checks run JAX matmuls and convolutions at (full float32)."""


def _read(obj: Any, dotted: str) -> Any:
    """``obj.a.b.c`` or ``None`` when an attribute is missing (torch moves these between versions)."""
    for name in dotted.split("."):
        try:
            obj = getattr(obj, name)
        except (AttributeError, RuntimeError):  # RuntimeError: a CUDA query on a CPU-only build
            return None
    return obj


def _torch_settings() -> dict[str, Any]:
    import torch

    cuda = bool(torch.cuda.is_available())
    devices = ["cpu"] + (
        [f"cuda:{i} {torch.cuda.get_device_name(i)}" for i in range(torch.cuda.device_count())] if cuda else []
    )
    settings = {
        "torch": torch.__version__,
        "torch_devices": devices,
        "torch_cuda_available": cuda,
        "torch_num_threads": torch.get_num_threads(),
        "torch_num_interop_threads": torch.get_num_interop_threads(),
        "torch_default_dtype": str(torch.get_default_dtype()).replace("torch.", ""),
        "torch_float32_matmul_precision": torch.get_float32_matmul_precision(),
        "torch_cuda_matmul_allow_tf32": _read(torch, "backends.cuda.matmul.allow_tf32"),
        "torch_cudnn_allow_tf32": _read(torch, "backends.cudnn.allow_tf32"),
        "torch_cuda_matmul_fp32_precision": _read(torch, "backends.cuda.matmul.fp32_precision"),
        "torch_cudnn_conv_fp32_precision": _read(torch, "backends.cudnn.conv.fp32_precision"),
        "torch_deterministic_algorithms": bool(torch.are_deterministic_algorithms_enabled()),
        "torch_cudnn_deterministic": bool(torch.backends.cudnn.deterministic),
        "torch_cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
    }
    return settings


def numerics_manifest() -> dict[str, Any]:
    """The versions, devices and numerics settings of JAX and torch in this process (JSON-ready)."""
    import jaxlib

    xla_flags = os.environ.get("XLA_FLAGS", "")
    manifest: dict[str, Any] = {
        "python": platform.python_version(),
        "numpy": np.__version__,
        "jax": jax.__version__,
        "jaxlib": getattr(jaxlib, "__version__", "?"),
        "jax_backend": jax.default_backend(),
        "jax_devices": [f"{d.platform}:{d.id} {getattr(d, 'device_kind', '')}".strip() for d in jax.devices()],
        "jax_default_matmul_precision": jax.default_matmul_precision.value or "default",
        "check_matmul_precision": CHECK_PRECISION,
        "jax_enable_x64": bool(jax.enable_x64.value),
        "XLA_FLAGS": xla_flags,
        "JAX_env": {k: v for k, v in sorted(os.environ.items()) if k.startswith("JAX_")},
        "xla_gpu_deterministic_ops": "--xla_gpu_deterministic_ops=true" in xla_flags,
    }
    manifest.update(_torch_settings())
    return manifest


def _tf32(manifest: dict[str, Any]) -> bool:
    """Whether torch's float32 CUDA matmuls or convolutions may run in TF32."""
    return bool(
        manifest.get("torch_cuda_matmul_allow_tf32")
        or manifest.get("torch_cudnn_allow_tf32")
        or manifest.get("torch_float32_matmul_precision") in ("high", "medium")
        or manifest.get("torch_cuda_matmul_fp32_precision") == "tf32"
        or manifest.get("torch_cudnn_conv_fp32_precision") == "tf32"
    )


def numerics_warnings(
    manifest: dict[str, Any],
    dtype: str = "float32",
    *,
    torch_device: str = "cpu",
    jax_precision: str | None = CHECK_PRECISION,
) -> list[str]:
    """The settings of ``manifest`` that make a ``dtype`` comparison loose: TF32 on a GPU in float32 (JAX
    at a matmul precision other than highest, or torch with TF32 switched on and its module on CUDA) and
    non-deterministic torch kernels on CUDA. ``jax_precision`` is the precision the JAX side runs at
    (``None``: the process default)."""
    out = []
    precision = jax_precision or manifest.get("jax_default_matmul_precision", "default")
    if (
        dtype == "float32"
        and manifest.get("jax_backend") in ("gpu", "cuda", "rocm", "tpu")
        and precision not in ("highest", "float32")
    ):
        out.append(
            f"JAX runs float32 matmuls/convolutions on {manifest['jax_backend']} at precision "
            f"{precision!r} (TF32/bfloat16 passes): errors of ~1e-3 are expected; use "
            "jax.default_matmul_precision('highest')"
        )
    if str(torch_device).startswith("cuda"):
        if dtype == "float32" and _tf32(manifest):
            out.append(
                "torch runs float32 on CUDA with TF32 on (torch.backends.cuda.matmul.allow_tf32 / "
                "torch.backends.cudnn.allow_tf32 / fp32_precision='tf32'): this alone explains errors of "
                "~1e-3; switch it off for a float32 comparison"
            )
        if manifest.get("torch_cudnn_benchmark") or not manifest.get("torch_deterministic_algorithms"):
            out.append(
                "torch on CUDA may pick non-deterministic kernels (torch.use_deterministic_algorithms "
                "is off or cudnn.benchmark is on): repeated runs can differ in the last bits"
            )
    return out


def format_manifest(manifest: dict[str, Any], warnings: Sequence[str] = ()) -> str:
    """The manifest as ``key: value`` lines under a ``numerics manifest`` heading, then each warning."""
    width = max(len(k) for k in manifest)
    lines = ["numerics manifest"]
    for key, value in manifest.items():
        if isinstance(value, (list, tuple)):
            value = ", ".join(map(str, value)) or "-"
        elif isinstance(value, dict):
            value = " ".join(f"{k}={v}" for k, v in value.items()) or "-"
        elif value == "":
            value = "-"
        lines.append(f"  {key.ljust(width)}  {value}")
    lines += [f"  WARNING: {w}" for w in warnings]
    return "\n".join(lines)


__all__ = ["numerics_manifest", "numerics_warnings", "format_manifest", "CHECK_PRECISION"]
