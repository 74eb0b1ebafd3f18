"""OpenVINO as the runtime of the PP-OCR models on the CPU.

Measured on the dev corpus (README, "PP-OCR on the CPU"), one thread, the same pages:
OpenVINO reads a page in about half the time onnxruntime takes, nearly all of it through
bf16 arithmetic, which OpenVINO picks by itself on CPUs that compute bf16 natively
(AVX512-BF16 or AMX); in f32 it is no faster than onnxruntime. The text is the same
within a few characters per page.

:class:`OpenVinoSession` has the one method RapidOCR's detector and recogniser call on
their session (``session(batch) -> array``), so it takes the place of RapidOCR's own
session (which has no precision setting). CPU pinning is off: the pool runs one
single-threaded engine per core, and OpenVINO would pin every worker's thread to the
same first core.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from ..errors import ConfigError

__all__ = ["OpenVinoSession", "Precision", "openvino_available", "openvino_version"]

Precision = Literal["auto", "f32", "bf16"]


def openvino_available() -> bool:
    """True when the ``openvino`` package imports."""
    try:
        import openvino  # noqa: F401
    except ImportError:
        return False
    return True


def openvino_version() -> str:
    """The installed OpenVINO's version (short form)."""
    import openvino

    return str(openvino.__version__).split("-")[0]


def _require() -> Any:
    try:
        import openvino
    except ImportError:
        raise ConfigError(
            "runtime=openvino needs the openvino package: pip install 'ocrbatch[rapidocr]'"
        ) from None
    return openvino


class OpenVinoSession:
    """One compiled model and its infer request, called like RapidOCR's sessions."""

    def __init__(self, model: Path, *, threads: int = 1, precision: Precision = "auto") -> None:
        ov = _require()
        core = ov.Core()
        props: dict[str, Any] = {
            "INFERENCE_NUM_THREADS": max(1, threads),
            "NUM_STREAMS": 1,
            "ENABLE_CPU_PINNING": False,
            "PERFORMANCE_HINT": "LATENCY",
        }
        if precision != "auto":
            props["INFERENCE_PRECISION_HINT"] = precision
        self._compiled = core.compile_model(core.read_model(str(model)), "CPU", props)
        self._request = self._compiled.create_infer_request()

    @property
    def precision(self) -> str:
        """The precision OpenVINO computes in (``bf16`` or ``f32``)."""
        return str(self._compiled.get_property("INFERENCE_PRECISION_HINT").to_string())

    @property
    def threads(self) -> int:
        return int(self._compiled.get_property("INFERENCE_NUM_THREADS"))

    def __call__(self, batch: Any) -> Any:
        self._request.infer([batch])
        # A copy: the output tensor's memory is reused by the next call.
        return self._request.get_output_tensor().data.copy()
