"""PP-OCR ONNX models -> torch modules, converted once and cached on disk.

The Paddle exports do not convert with ``onnx2torch`` as they are; three graph fixes make
them convert (and agree with onnxruntime to ~1e-6):

1. the weights sit in ``Constant`` nodes, which onnx2torch cannot look up as weights:
   they are moved into graph initializers;
2. tensor ranks are lost after reshapes (onnx2torch needs them, e.g. for BatchNorm):
   the model runs once in onnxruntime on a small sample with every intermediate tensor
   as an output, and each tensor's rank is written into ``value_info``;
3. onnx2torch does not implement ``auto_pad=SAME_UPPER`` (PP-OCRv6's models have it on a
   few 2x2 convolutions and poolings of stride 1): where the stride is 1 the padding does
   not depend on the input's size, so it is written out as explicit ``pads``.

onnx2torch imports torchvision for two operators (NMS, RoiAlign) that PP-OCR never uses.
torchvision must match the torch build exactly (PyPI's does not import beside the CPU
torch that CI installs), so when it cannot be imported a placeholder stands in for it;
calling those two operators would then raise. The converted module is pickled with
``torch.save`` into a cache keyed by the model file's hash (plus the torch and onnx2torch
versions), so each worker only loads it.
"""

from __future__ import annotations

import hashlib
import importlib
import os
import sys
import types
import warnings
from importlib.metadata import version as _version
from pathlib import Path
from typing import Any

import torch

from ...errors import ConfigError

__all__ = ["TupleSlice", "cache_dir", "file_sha256", "import_onnx2torch", "load_module", "to_torch"]

# Bump when the conversion itself changes, so that old cache files are not reused.
_RECIPE = "v2"


def cache_dir(option: str | None = None) -> Path:
    """Where converted modules live: the option, OCRBATCH_CACHE, else the user cache."""
    if option:
        return Path(option)
    env = os.environ.get("OCRBATCH_CACHE")
    if env:
        return Path(env) / "ppocr-torch"
    base = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")
    return base / "ocrbatch" / "ppocr-torch"


def file_sha256(path: Path) -> str:
    """Hex SHA-256 of a file's bytes (the cache key of its converted module)."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _torchvision_placeholder() -> None:
    def unavailable(*_a: Any, **_k: Any) -> Any:
        raise NotImplementedError("torchvision is not importable beside this torch build")

    tv = types.ModuleType("torchvision")
    ops = types.ModuleType("torchvision.ops")
    for name in ("nms", "roi_align", "box_convert"):
        setattr(ops, name, unavailable)
    tv.ops = ops  # type: ignore[attr-defined]
    sys.modules["torchvision"] = tv
    sys.modules["torchvision.ops"] = ops


def import_onnx2torch() -> Any:
    """Import onnx2torch, with a torchvision placeholder when the real one cannot load."""
    try:
        return importlib.import_module("onnx2torch")
    except ImportError as exc:
        if "onnx2torch" in str(exc) and "torchvision" not in str(exc):
            raise ConfigError(
                "the ppocr-torch engine needs onnx2torch: pip install 'ocrbatch[gpu]'"
            ) from None
    except Exception:  # noqa: S110 - a torchvision that fails to load raises anything
        pass
    for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
        del sys.modules[name]
    for name in [m for m in sys.modules if m.startswith("onnx2torch")]:
        del sys.modules[name]
    _torchvision_placeholder()
    return importlib.import_module("onnx2torch")


def _constants_to_initializers(model: Any) -> None:
    from onnx import numpy_helper

    graph = model.graph
    keep = []
    for node in graph.node:
        attrs = list(node.attribute)
        if node.op_type == "Constant" and len(attrs) == 1 and attrs[0].name == "value":
            array = numpy_helper.to_array(attrs[0].t)
            graph.initializer.append(numpy_helper.from_array(array, node.output[0]))
        else:
            keep.append(node)
    del graph.node[:]
    graph.node.extend(keep)


def _explicit_same_pads(model: Any) -> None:
    from onnx import helper

    for node in model.graph.node:
        attrs = {a.name: a for a in node.attribute}
        mode = attrs["auto_pad"].s.decode() if "auto_pad" in attrs else "NOTSET"
        if mode not in ("SAME_UPPER", "SAME_LOWER") or "kernel_shape" not in attrs:
            continue
        kernel = list(attrs["kernel_shape"].ints)
        strides = list(attrs["strides"].ints) if "strides" in attrs else [1] * len(kernel)
        dilations = list(attrs["dilations"].ints) if "dilations" in attrs else [1] * len(kernel)
        if any(s != 1 for s in strides):
            continue  # size-dependent padding: left to onnx2torch (which refuses it)
        total = [(k - 1) * d for k, d in zip(kernel, dilations, strict=True)]
        small = [t // 2 for t in total]
        big = [t - h for t, h in zip(total, small, strict=True)]
        begin, end = (small, big) if mode == "SAME_UPPER" else (big, small)
        node.attribute.remove(attrs["auto_pad"])
        node.attribute.append(helper.make_attribute("pads", begin + end))


def _write_ranks(model: Any, sample: Any) -> None:
    import onnx
    import onnxruntime as ort
    from onnx import helper

    probe = onnx.ModelProto()
    probe.CopyFrom(model)
    outputs = {o.name for o in probe.graph.output}
    for node in probe.graph.node:
        for name in node.output:
            if name and name not in outputs:
                probe.graph.output.append(helper.make_empty_tensor_value_info(name))
                outputs.add(name)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    opts.log_severity_level = 3
    sess = ort.InferenceSession(probe.SerializeToString(), opts, providers=["CPUExecutionProvider"])
    finals = {o.name for o in model.graph.output}
    input_name = model.graph.input[0].name
    values = sess.run(None, {input_name: sample})
    for out, value in zip(sess.get_outputs(), values, strict=True):
        if out.name in finals:
            continue
        dtype = helper.np_dtype_to_tensor_dtype(value.dtype)
        model.graph.value_info.append(
            helper.make_tensor_value_info(out.name, dtype, [None] * value.ndim)
        )


def _tuple_slices(module: Any) -> None:
    """Swap onnx2torch's Slice for one that indexes with a tuple.

    Its Slice indexes with a list of slices, which torch deprecates (a UserWarning on
    every call, and a change of meaning announced); the arithmetic is the same.
    """
    from onnx2torch.node_converters.slice import OnnxSlice

    for name, sub in list(module.named_modules()):
        if isinstance(sub, OnnxSlice):
            parent = module
            *path, leaf = name.split(".")
            for part in path:
                parent = getattr(parent, part)
            setattr(parent, leaf, TupleSlice())


class TupleSlice(torch.nn.Module):
    """ONNX Slice (opset 10+) that indexes with a tuple; same arithmetic as onnx2torch's."""

    def forward(
        self,
        x: torch.Tensor,
        starts: torch.Tensor,
        ends: torch.Tensor,
        axes: torch.Tensor | None = None,
        steps: torch.Tensor | None = None,
    ) -> torch.Tensor:
        st = starts.tolist()
        en = ends.tolist()
        ax = axes.tolist() if axes is not None else list(range(len(st)))
        sp = steps.tolist() if steps is not None else [1] * len(st)
        index: list[slice] = [slice(None)] * x.dim()
        for s, e, a, k in zip(st, en, ax, sp, strict=True):
            if k < 0:
                raise NotImplementedError("negative Slice steps do not occur in PP-OCR")
            index[a] = slice(s, e, k)
        return x[tuple(index)]


def to_torch(onnx_path: Path, sample_shape: tuple[int, ...]) -> tuple[Any, dict[str, str]]:
    """Convert one PP-OCR ONNX model to a torch module (eval mode, on the CPU).

    Also returns the model's metadata (the recognizer keeps its character list there).
    """
    import numpy as np
    import onnx

    o2t = import_onnx2torch()
    model = onnx.load(str(onnx_path))
    meta = {p.key: p.value for p in model.metadata_props}
    _constants_to_initializers(model)
    _explicit_same_pads(model)
    sample = np.random.default_rng(0).uniform(-1, 1, sample_shape).astype(np.float32)
    _write_ranks(model, sample)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # onnx2torch's notes about unchecked attributes
        module = o2t.convert(model)
    _tuple_slices(module)
    return module.eval(), meta


def load_module(
    onnx_path: Path, sample_shape: tuple[int, ...], folder: Path
) -> tuple[Any, dict[str, str]]:
    """The torch module for ``onnx_path`` and its metadata: from the cache, converting it
    on a miss. ``sample_shape`` is the input the rank-probing run uses."""
    import_onnx2torch()  # unpickling the module imports onnx2torch's classes
    digest = file_sha256(onnx_path)[:20]
    tag = f"{_RECIPE}-torch{torch.__version__}-o2t{_version('onnx2torch')}"
    tag = "".join(c if c.isalnum() or c in ".-" else "_" for c in tag)
    target = folder / f"{onnx_path.stem}-{digest}-{tag}.pt"
    if target.is_file():
        try:
            # Our own pickle, written below; the cache folder must be as trusted as the
            # model files themselves.
            saved = torch.load(target, weights_only=False, map_location="cpu")
            return saved["module"].eval(), dict(saved["meta"])
        except Exception:  # noqa: S110 - a torn or stale cache file is converted again
            pass
    module, meta = to_torch(onnx_path, sample_shape)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(f".{os.getpid()}.tmp")
        torch.save({"module": module, "meta": meta}, tmp)
        os.replace(tmp, target)  # atomic: a worker never reads a half-written file
    except OSError:
        pass  # a read-only cache only costs a conversion per worker
    return module, meta
