"""A reference for the MoveNet tests: the TF.js GraphDef evaluated op by op.

Independent of nets.movenet: it reads the manifest and the .bin itself, follows the
graph's own wiring, padding attributes and constants, and runs each node with numpy
(convolutions via torch.nn.functional on explicitly TF-padded inputs). Slow and
generic on purpose: test code only, never the product's way to run MoveNet.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

_DTYPES = {"float32": np.float32, "float16": np.float16, "int32": np.int32}
_CAST = {"DT_FLOAT": np.float32, "DT_INT32": np.int32, "DT_BOOL": np.bool_}


def _consts(path: Path, manifest: list[dict[str, Any]]) -> dict[str, np.ndarray]:
    out = {}
    for group in manifest:
        buf = b"".join((path.parent / p).read_bytes() for p in group["paths"])
        pos = 0
        for w in group["weights"]:
            dt = w.get("quantization", {}).get("dtype", w["dtype"])
            n = int(np.prod(w["shape"]))
            a = np.frombuffer(buf, _DTYPES[dt], n, pos).reshape(w["shape"])
            pos += a.nbytes
            out[w["name"]] = a.astype(np.int32 if dt == "int32" else np.float32)
    return out


def _attr(node: dict[str, Any], key: str, default: Any = None) -> Any:
    a = node.get("attr", {}).get(key)
    if a is None:
        return default
    if "list" in a:
        lst = a["list"]
        if "i" in lst:
            return [int(v) for v in lst["i"]]
        return [base64.b64decode(v).decode() for v in lst.get("s", [])]
    if "s" in a:
        return base64.b64decode(a["s"]).decode()
    if "i" in a:
        return int(a["i"])
    if "b" in a:
        return bool(a["b"])
    if "type" in a:
        return a["type"]
    return a


def _tf_pad(x: np.ndarray, k: int, s: int, padding: str) -> tuple[np.ndarray, ...]:
    """NHWC input padded as TF does for `padding` (SAME: extra row/col after)."""
    if padding == "VALID":
        return x
    pads = []
    for size in x.shape[1:3]:
        total = max((-(-size // s) - 1) * s + k - size, 0)
        pads.append((total // 2, total - total // 2))
    return np.pad(x, ((0, 0), pads[0], pads[1], (0, 0)))


def _conv(node, x, w, bias=None, depthwise=False):
    s = _attr(node, "strides")[1]
    x = _tf_pad(x, w.shape[0], s, _attr(node, "padding"))
    xt = torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))
    if depthwise:  # H W C 1 -> C 1 H W
        wt = torch.from_numpy(np.ascontiguousarray(w.transpose(2, 3, 0, 1)))
        y = F.conv2d(xt, wt, stride=s, groups=w.shape[2])
    else:  # H W I O -> O I H W
        wt = torch.from_numpy(np.ascontiguousarray(w.transpose(3, 2, 0, 1)))
        y = F.conv2d(xt, wt, stride=s)
    y = y.numpy().transpose(0, 2, 3, 1)
    for op in _attr(node, "fused_ops", []):
        if op == "BiasAdd":
            y = y + bias
        elif op == "Relu":
            y = np.maximum(y, 0)
        elif op == "Relu6":
            y = np.clip(y, 0, 6)
        else:
            raise NotImplementedError(op)
    return y


def _resize_bilinear(x: np.ndarray, size: np.ndarray) -> np.ndarray:
    """TF ResizeBilinear with half_pixel_centers=True, align_corners=False."""
    for axis, out_size in ((1, int(size[0])), (2, int(size[1]))):
        n = x.shape[axis]
        src = (np.arange(out_size) + 0.5) * (n / out_size) - 0.5
        lo = np.floor(src)
        frac = (src - lo).astype(np.float32)
        i0 = np.clip(lo, 0, n - 1).astype(int)
        i1 = np.clip(lo + 1, 0, n - 1).astype(int)
        shape = [1, 1, 1, 1]
        shape[axis] = out_size
        frac = frac.reshape(shape)
        x = np.take(x, i0, axis) * (1 - frac) + np.take(x, i1, axis) * frac
    return x


def _strided_slice(node, x, begin, end, strides):
    masks = {
        k: _attr(node, k, 0)
        for k in (
            "begin_mask",
            "end_mask",
            "ellipsis_mask",
            "new_axis_mask",
            "shrink_axis_mask",
        )
    }
    index: list[Any] = []
    for i in range(len(begin)):
        if masks["ellipsis_mask"] >> i & 1:
            index.append(Ellipsis)
        elif masks["new_axis_mask"] >> i & 1:
            index.append(None)
        elif masks["shrink_axis_mask"] >> i & 1:
            index.append(int(begin[i]))
        else:
            b = None if masks["begin_mask"] >> i & 1 else int(begin[i])
            e = None if masks["end_mask"] >> i & 1 else int(end[i])
            index.append(slice(b, e, int(strides[i])))
    return x[tuple(index)]


def _max_pool(node, x):
    k = _attr(node, "ksize")[1]
    assert _attr(node, "strides")[1] == 1 and _attr(node, "padding") == "SAME"
    p = k // 2
    xp = np.pad(x, ((0, 0), (p, p), (p, p), (0, 0)), constant_values=-np.inf)
    h, w = x.shape[1:3]
    return np.max(
        [xp[:, i : i + h, j : j + w] for i in range(k) for j in range(k)], axis=0
    )


def _top_k(x, k):
    idx = np.argsort(-x, axis=-1, kind="stable")[..., : int(k)]
    return [np.take_along_axis(x, idx, -1), idx.astype(np.int32)]


def _run(node: dict[str, Any], a: list[Any]) -> Any:  # noqa: C901 - one op per branch
    op = node["op"]
    simple = {
        "Sub": np.subtract,
        "Mul": np.multiply,
        "AddV2": np.add,
        "RealDiv": np.divide,
        "Minimum": np.minimum,
        "Maximum": np.maximum,
        "Less": np.less,
        "Greater": np.greater,
        "GreaterEqual": np.greater_equal,
        "Equal": np.equal,
        "LogicalAnd": np.logical_and,
        "FloorDiv": np.floor_divide,
        "SquaredDifference": lambda x, y: np.square(x - y),
    }
    if op in simple:
        return simple[op](a[0], a[1])
    if op == "Cast":
        return a[0].astype(_CAST[_attr(node, "DstT")])
    if op == "_FusedConv2D":
        return _conv(node, a[0], a[1], a[2] if len(a) > 2 else None)
    if op in ("FusedDepthwiseConv2dNative", "DepthwiseConv2dNative"):
        return _conv(node, a[0], a[1], a[2] if len(a) > 2 else None, depthwise=True)
    if op == "ResizeBilinear":
        assert _attr(node, "half_pixel_centers") and not _attr(node, "align_corners")
        return _resize_bilinear(a[0], a[1])
    if op == "Sigmoid":
        return 1 / (1 + np.exp(-a[0]))
    unary = {
        "Exp": np.exp,
        "Abs": np.abs,
        "Reciprocal": np.reciprocal,
        "Identity": lambda x: x,
        "Size": lambda x: np.int32(x.size),
        "Shape": lambda x: np.array(x.shape, np.int32),
    }
    if op in unary:
        return unary[op](a[0])
    if op == "StridedSlice":
        return _strided_slice(node, *a)
    if op == "Pack":
        return np.stack(a, axis=_attr(node, "axis", 0))
    if op == "Unpack":
        return list(np.moveaxis(a[0], _attr(node, "axis", 0), 0))
    if op == "Range":
        return np.arange(a[0], a[1], a[2]).astype(np.asarray(a[0]).dtype)
    if op == "Reshape":
        return a[0].reshape(a[1])
    if op == "Squeeze":
        return np.squeeze(a[0], axis=tuple(_attr(node, "squeeze_dims")))
    if op == "ExpandDims":
        return np.expand_dims(a[0], int(a[1]))
    if op == "Fill":
        return np.full(a[0], a[1])
    if op == "Tile":
        return np.tile(a[0], a[1])
    if op == "MaxPool":
        return _max_pool(node, a[0])
    if op == "TopKV2":
        return _top_k(a[0], a[1])
    if op == "GatherNd":
        return a[0][tuple(np.moveaxis(a[1], -1, 0))]
    if op in ("Max", "Sum"):
        fn = np.max if op == "Max" else np.sum
        return fn(a[0], axis=int(a[1]), keepdims=_attr(node, "keep_dims", False))
    if op == "ArgMax":
        return np.argmax(a[0], axis=int(a[1]))
    if op == "Select":
        return np.where(a[0], a[1], a[2])
    if op == "Split":
        return np.split(a[1], _attr(node, "num_split"), axis=int(a[0]))
    if op == "AddN":
        return sum(a[1:], a[0])
    if op == "ConcatV2":
        return np.concatenate(a[:-1], axis=int(a[-1]))
    raise NotImplementedError(op)


class TfjsGraph:
    """Evaluate named nodes of a TF.js graph model for one NHWC int32 image."""

    def __init__(self, path: str | Path):
        path = Path(path)
        model = json.loads(path.read_text())
        self.nodes = {n["name"]: n for n in model["modelTopology"]["node"]}
        self.order = [n["name"] for n in model["modelTopology"]["node"]]
        self.consts = _consts(path, model["weightsManifest"])

    def __call__(self, image: np.ndarray, outputs: list[str]) -> list[np.ndarray]:
        """image: 1 x H x W x 3 int32 (0..255); outputs: node names (`name:k` for
        a node's k-th output)."""
        needed: set[str] = set()
        stack = [o.split(":")[0] for o in outputs]
        while stack:
            name = stack.pop()
            if name not in needed:
                needed.add(name)
                stack += [i.split(":")[0] for i in self.nodes[name].get("input", [])]
        values: dict[str, Any] = {}
        for name in self.order:
            if name not in needed:
                continue
            node = self.nodes[name]
            if node["op"] == "Placeholder":
                values[name] = image
            elif node["op"] == "Const":
                values[name] = self.consts[name]
            else:
                values[name] = _run(node, [self._get(values, i) for i in node["input"]])
        return [self._get(values, o) for o in outputs]

    @staticmethod
    def _get(values: dict[str, Any], ref: str) -> Any:
        name, _, k = ref.partition(":")
        v = values[name]
        return v[int(k or 0)] if isinstance(v, list) else v
