"""Which ONNX Runtime execution providers to ask for: the best that will really work here.

Every :data:`~stream_detector.constants.ProviderPreference` choice (``auto``, ``cpu``,
``cuda``, ``tensorrt``) is implemented in :func:`select_providers`.

Provider choice is quiet on purpose: onnxruntime-gpu reports CUDA and TensorRT as
"available" on machines with no GPU or driver, and a session asked for them prints
library-loading errors before falling back. We look for a usable GPU ourselves (the driver
library loads, ``cuInit`` succeeds, a device exists, the CUDA provider library and its
dependencies load) and ask only for providers that will work.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import glob
import io
import os
import warnings
from pathlib import Path
from typing import Final

import onnxruntime as ort

from stream_detector.constants import PROVIDER_PREFERENCES, ProviderPreference
from stream_detector.exceptions import ConfigurationError

__all__ = ["CPU", "CUDA", "QUIET", "TENSORRT", "gpu_available", "select_providers"]

CPU: Final = "CPUExecutionProvider"
CUDA: Final = "CUDAExecutionProvider"
TENSORRT: Final = "TensorrtExecutionProvider"
QUIET: Final = 3  # ORT severities: 0 verbose, 1 info, 2 warning, 3 error, 4 fatal


def _cuda_device_count() -> int:
    """Devices the CUDA driver sees, asked through the driver API without any output."""
    if not glob.glob("/dev/nvidia[0-9]*") and not os.path.exists("/dev/dxg"):  # dxg: WSL2
        return 0
    try:
        libcuda = ctypes.CDLL("libcuda.so.1")
        if libcuda.cuInit(0) != 0:
            return 0
        count = ctypes.c_int(0)
        if libcuda.cuDeviceGetCount(ctypes.byref(count)) != 0:
            return 0
        return count.value
    except (OSError, AttributeError):
        return 0


def _provider_library_loads(name: str) -> bool:
    """True when ORT's provider library for ``name`` and everything it links load."""
    capi = Path(ort.__file__).parent / "capi"
    try:
        # preload_dlls finds CUDA/cuDNN from nvidia-* wheels; it prints on failure.
        if hasattr(ort, "preload_dlls"):
            sink = io.StringIO()
            with (
                contextlib.redirect_stdout(sink),
                contextlib.redirect_stderr(sink),
                warnings.catch_warnings(),
            ):
                warnings.simplefilter("ignore")
                ort.preload_dlls()
        # ORT loads the shared bridge globally before a provider library; do the same so
        # the provider's reference to Provider_GetHost resolves as it will in ORT.
        ctypes.CDLL(str(capi / "libonnxruntime_providers_shared.so"), mode=ctypes.RTLD_GLOBAL)
        ctypes.CDLL(str(capi / f"libonnxruntime_providers_{name}.so"))
    except (OSError, RuntimeError):
        return False
    return True


@functools.cache
def gpu_available(provider: str = CUDA) -> bool:
    """Whether ``provider`` (CUDA or TensorRT) would really run here; cached per process."""
    if provider not in ort.get_available_providers() or _cuda_device_count() == 0:
        return False
    return _provider_library_loads("cuda" if provider == CUDA else "tensorrt")


def select_providers(preference: ProviderPreference | str = "auto") -> list[str]:
    """Execution providers to ask ONNX Runtime for, best first, ending with CPU.

    Parameters
    ----------
    preference
        ``auto`` uses CUDA when a GPU is really usable, else CPU, without printing
        anything; ``cpu`` never touches GPU libraries; ``cuda`` and ``tensorrt`` insist
        and raise :class:`ConfigurationError` when the GPU path cannot work.

    >>> select_providers("cpu")
    ['CPUExecutionProvider']
    """
    ort.set_default_logger_severity(QUIET)
    if preference == "cpu":
        return [CPU]
    if preference == "auto":
        return [CUDA, CPU] if gpu_available(CUDA) else [CPU]
    if preference in ("cuda", "tensorrt"):
        wanted = [TENSORRT, CUDA] if preference == "tensorrt" else [CUDA]
        missing = [p for p in wanted if not gpu_available(p)]
        if missing:
            raise ConfigurationError(
                f"provider {preference!r} was requested but {', '.join(missing)} cannot run "
                "here (no NVIDIA GPU/driver, or CUDA/cuDNN libraries missing); install "
                "onnxruntime-gpu with CUDA 12+/cuDNN 9 on a GPU host, or set "
                "STREAM_DETECTOR_PROVIDER=auto"
            )
        return [*wanted, CPU]
    raise ConfigurationError(
        f"unknown provider {preference!r}; use one of {', '.join(PROVIDER_PREFERENCES)}"
    )
