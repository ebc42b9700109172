"""MoveNet MultiPose Lightning rebuilt in plain torch, weights read by name from TF.js.

The TF.js graph (`movenet-multipose.json` + `.bin`, a TF GraphDef in JSON) is a
MobileNetV2 (alpha 1.5, batch norm already folded into conv biases) with a small FPN
down to stride 4 and six CenterNet heads. Here it is a stack of real nn.Modules, so it
trains and exports like any other network:

    MoveNetTrunk  images normalised to [-1, 1] -> 4 FPN maps at strides 4, 8, 16, 32
                  (24, 24, 32, 64 channels); the stride-4 map (24 channels) is what the
                  heads read. It is also the `movenet` backbone of nets.backbones.
    MoveNet       images RGB in [0, 1] -> the raw head maps (logits / regressions).

Input: the graph casts an int32 0..255 image to float and maps it to [-1, 1]
(x * 2/255 - 1); sides must be multiples of 32. TF's SAME padding of a stride-2 conv
on an even side pads only bottom/right, which `_tf_same` reproduces.

`read_tfjs(path)` turns the TF.js files into a state_dict of `MoveNet` (TF's HWIO
kernels transposed to torch's OIHW); `tfjs_names()` is the table that maps each torch
key to its TF tensor name.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from nets.backbones import make_divisible

TFJS_PREFIX = "StatefulPartitionedCall/"
TRUNK_PREFIX = TFJS_PREFIX + "center_net_mobile_net_v2fpn_feature_extractor/model_1/"
MOVENET_ALPHA = 1.5  # the width its weights have
# MobileNetV2 at MoveNet's width: stem, then (expand, out, repeats, stride) per stage.
STEM, FIRST = 48, 24
STAGES = [
    (6, 40, 2, 2),
    (6, 48, 3, 2),
    (6, 96, 4, 2),
    (6, 144, 3, 1),
    (6, 240, 3, 2),
    (6, 480, 1, 1),
]
LAST = 1280
# Blocks whose outputs the FPN reads, and the FPN's output widths per level.
LATERAL_BLOCKS = (2, 5, 9)  # strides 4, 8, 16; stride 32 is the last 1x1 conv
FPN_WIDTHS = (24, 24, 32, 64)  # output channels at strides 4, 8, 16, 32
HEAD_WIDTH = 96
# head name -> (output channels, index of its separable conv in TF's names)
HEADS = {
    "center": (1, 3),
    "box_scale": (2, 4),
    "box_offset": (2, 5),
    "kpt_heatmap": (17, 6),
    "kpt_regress": (34, 7),
    "kpt_offset": (34, 8),
}


class MoveNetWeightsError(ValueError):
    """The TF.js files are missing, unreadable or not MoveNet MultiPose."""


def _tf_same(x: torch.Tensor) -> torch.Tensor:
    """TF SAME padding of a 3x3 stride-2 conv on an even side: one row/column after."""
    return F.pad(x, (0, 1, 0, 1))


class Conv(nn.Module):
    """conv + bias (BN folded) -> optional activation; stride 2 pads like TF."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int = 1,
        stride: int = 1,
        groups: int = 1,
        act: Callable[[torch.Tensor], torch.Tensor] | None = None,
        bias: bool = True,
    ):
        super().__init__()
        pad = 0 if stride == 2 else (kernel - 1) // 2
        self.conv = nn.Conv2d(cin, cout, kernel, stride, pad, groups=groups, bias=bias)
        self.stride = stride
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv(_tf_same(x) if self.stride == 2 else x)
        return self.act(x) if self.act is not None else x


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand -> 3x3 depthwise -> 1x1 project (+ skip)."""

    def __init__(self, cin: int, cout: int, expand: int, stride: int):
        super().__init__()
        hidden = cin * expand
        self.expand = Conv(cin, hidden, act=F.relu6) if expand != 1 else None
        self.depthwise = Conv(hidden, hidden, 3, stride, groups=hidden, act=F.relu6)
        self.project = Conv(hidden, cout)
        self.residual = stride == 1 and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.expand(x) if self.expand is not None else x
        out = self.project(self.depthwise(out))
        return x + out if self.residual else out


class SeparableConv(nn.Module):
    """Keras SeparableConv2D: 3x3 depthwise (no bias) -> 1x1 pointwise + bias, ReLU."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, 1, 1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.pointwise(self.depthwise(x)))


def scaled(channels: int, width_mult: float) -> int:
    """MoveNet's channel count at another alpha (exactly its own at 1.5)."""
    if width_mult == MOVENET_ALPHA:
        return channels
    return make_divisible(channels * width_mult / MOVENET_ALPHA)


def _upsample2(x: torch.Tensor) -> torch.Tensor:
    """Keras UpSampling2D(bilinear): TF half-pixel resize = align_corners=False."""
    return F.interpolate(x, scale_factor=2.0, mode="bilinear", align_corners=False)


class MoveNetTrunk(nn.Module):
    """MobileNetV2 + FPN: B x 3 x H x W in [-1, 1] -> [X4, X8, X16, X32], finest first.

    `width_mult` is MobileNetV2's alpha: 1.5 is MoveNet's own width (the only one its
    weights fit); smaller values make narrow test networks.
    """

    input_mean = (0.5, 0.5, 0.5)  # (x - 0.5) / 0.5 maps [0, 1] to MoveNet's [-1, 1]
    input_std = (0.5, 0.5, 0.5)

    def __init__(self, width_mult: float = MOVENET_ALPHA):
        super().__init__()

        def ch(c: int) -> int:
            return scaled(c, width_mult)

        self.Conv1 = Conv(3, ch(STEM), 3, 2, act=F.relu6)
        self.expanded_conv = InvertedResidual(ch(STEM), ch(FIRST), 1, 1)
        cin, blocks = ch(FIRST), []
        for expand, cout, repeats, stride in STAGES:
            for r in range(repeats):
                blocks.append(
                    InvertedResidual(cin, ch(cout), expand, stride if r == 0 else 1)
                )
                cin = ch(cout)
        self.blocks = nn.ModuleList(blocks)  # TF's block_1 .. block_16
        self.Conv_1 = Conv(cin, ch(LAST), act=F.relu6)
        taps = [blocks[i - 1].project.conv.out_channels for i in LATERAL_BLOCKS]
        widths = [ch(c) for c in FPN_WIDTHS]
        self.conv2d = Conv(ch(LAST), widths[3])  # top of the FPN, stride 32
        self.conv2d_1 = Conv(taps[2], widths[3])  # laterals at strides 16, 8, 4
        self.conv2d_2 = Conv(taps[1], widths[2])
        self.conv2d_3 = Conv(taps[0], widths[1])
        self.separable_conv2d = SeparableConv(widths[3], widths[2])
        self.separable_conv2d_1 = SeparableConv(widths[2], widths[1])
        self.separable_conv2d_2 = SeparableConv(widths[1], widths[0])
        self.channels = [widths[0], widths[1], widths[2], widths[3]]

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        x = self.expanded_conv(self.Conv1(x))
        taps = []
        for i, block in enumerate(self.blocks, start=1):
            x = block(x)
            if i in LATERAL_BLOCKS:
                taps.append(x)
        x32 = self.conv2d(self.Conv_1(x))
        x16 = self.separable_conv2d(_upsample2(x32) + self.conv2d_1(taps[2]))
        x8 = self.separable_conv2d_1(_upsample2(x16) + self.conv2d_2(taps[1]))
        x4 = self.separable_conv2d_2(_upsample2(x8) + self.conv2d_3(taps[0]))
        return [x4, x8, x16, x32]


class Head(nn.Module):
    """One CenterNet head: separable 3x3 (ReLU) -> 1x1 conv to the head's channels."""

    def __init__(self, cin: int, width: int, cout: int):
        super().__init__()
        self.separable = SeparableConv(cin, width)
        self.conv = nn.Conv2d(width, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.separable(x))


class MoveNet(nn.Module):
    """images B x 3 x H x W RGB in [0, 1] (sides multiples of 32) -> raw head maps.

    Outputs at stride 4 (H/4 x W/4): `kpt_heatmap` 17 logits, `center` 1 logit,
    `kpt_regress` 34 (dy, dx per joint from a centre, in grid cells), `kpt_offset` 34
    (dy, dx sub-cell refinement per joint), `box_scale` 2 (h, w in cells), `box_offset`
    2 (dy, dx of the box centre); channel pairs are (y, x) per joint, COCO-17 order.
    """

    def __init__(self, width_mult: float = MOVENET_ALPHA):
        super().__init__()
        self.trunk = MoveNetTrunk(width_mult)
        cin = self.trunk.channels[0]
        width = scaled(HEAD_WIDTH, width_mult)
        self.heads = nn.ModuleDict(
            {name: Head(cin, width, cout) for name, (cout, _) in HEADS.items()}
        )

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        x4 = self.trunk(images * 2.0 - 1.0)[0]
        return {name: head(x4) for name, head in self.heads.items()}


def tfjs_names(num_blocks: int = 16) -> dict[str, str]:
    """torch key of `MoveNet` -> TF tensor name in the TF.js weights manifest."""
    out: dict[str, str] = {}

    def folded(key: str, tf: str) -> None:  # a conv with BN folded into its bias
        out[f"trunk.{key}.conv.weight"] = f"{TRUNK_PREFIX}model/{tf}_weights"
        out[f"trunk.{key}.conv.bias"] = f"{TRUNK_PREFIX}model/{tf}_bn_offset"

    folded("Conv1", "Conv1/Conv2D")
    folded("expanded_conv.depthwise", "expanded_conv_depthwise/depthwise")
    folded("expanded_conv.project", "expanded_conv_project/Conv2D")
    for i in range(1, num_blocks + 1):
        folded(f"blocks.{i - 1}.expand", f"block_{i}_expand/Conv2D")
        folded(f"blocks.{i - 1}.depthwise", f"block_{i}_depthwise/depthwise")
        folded(f"blocks.{i - 1}.project", f"block_{i}_project/Conv2D")
    folded("Conv_1", "Conv_1/Conv2D")
    for name in ("conv2d", "conv2d_1", "conv2d_2", "conv2d_3"):
        out[f"trunk.{name}.conv.weight"] = f"{TRUNK_PREFIX}{name}/Conv2D/ReadVariableOp"
        out[f"trunk.{name}.conv.bias"] = f"{TRUNK_PREFIX}{name}/BiasAdd/ReadVariableOp"
    for name in ("separable_conv2d", "separable_conv2d_1", "separable_conv2d_2"):
        tf = f"{TRUNK_PREFIX}{name}/separable_conv2d"
        out[f"trunk.{name}.depthwise.weight"] = f"{tf}/ReadVariableOp"
        out[f"trunk.{name}.pointwise.weight"] = f"{tf}_weights"
        out[f"trunk.{name}.pointwise.bias"] = f"{tf}_bn_offset"
    for name, (_, sep) in HEADS.items():
        tf = f"{TFJS_PREFIX}{name}_0/"
        key = f"heads.{name}."
        out[key + "separable.depthwise.weight"] = (
            f"{tf}separable_conv2d_{sep}/separable_conv2d/ReadVariableOp"
        )
        out[key + "separable.pointwise.weight"] = (
            f"{tf}separable_conv2d_{sep}/separable_conv2d/ReadVariableOp_1"
        )
        out[key + "separable.pointwise.bias"] = (
            f"{tf}separable_conv2d_{sep}/BiasAdd/ReadVariableOp"
        )
        out[key + "conv.weight"] = f"{tf}conv2d_{sep + 1}/Conv2D/ReadVariableOp"
        out[key + "conv.bias"] = f"{tf}conv2d_{sep + 1}/BiasAdd/ReadVariableOp"
    return out


_NUMPY_DTYPES = {"float32": np.float32, "float16": np.float16, "int32": np.int32}


def read_tfjs_tensors(path: str | Path) -> dict[str, np.ndarray]:
    """Every tensor of a TF.js model's weights manifest, by name, as float32/int32."""
    path = Path(path)
    if not path.is_file():
        raise MoveNetWeightsError(f"MoveNet model file not found: {path}")
    try:
        manifest = json.loads(path.read_text())["weightsManifest"]
    except (ValueError, KeyError, TypeError) as exc:
        raise MoveNetWeightsError(f"not a TF.js graph model: {path} ({exc})") from exc
    tensors: dict[str, np.ndarray] = {}
    for group in manifest:
        files = [path.parent / p for p in group["paths"]]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise MoveNetWeightsError(f"MoveNet weights file not found: {missing[0]}")
        buf = b"".join(f.read_bytes() for f in files)
        offset = 0
        for spec in group["weights"]:
            dtype = spec.get("quantization", {}).get("dtype", spec["dtype"])
            if dtype not in _NUMPY_DTYPES or "scale" in spec.get("quantization", {}):
                raise MoveNetWeightsError(f"unsupported TF.js tensor type {dtype}")
            count = int(np.prod(spec["shape"], dtype=np.int64))
            arr = np.frombuffer(buf, _NUMPY_DTYPES[dtype], count, offset)
            offset += arr.nbytes
            arr = arr.reshape(spec["shape"])
            tensors[spec["name"]] = arr.astype(
                np.int32 if dtype == "int32" else np.float32
            )
        if offset != len(buf):
            raise MoveNetWeightsError(
                f"{path}: weights are {len(buf)} bytes, the manifest lists {offset}"
            )
    return tensors


def read_tfjs(path: str | Path) -> dict[str, torch.Tensor]:
    """The state_dict of a full-width `MoveNet` from its TF.js files (by name)."""
    tensors = read_tfjs_tensors(path)
    state = {}
    for key, tf in tfjs_names().items():
        if tf not in tensors:
            raise MoveNetWeightsError(f"{path} is not MoveNet MultiPose: no {tf}")
        arr = tensors[tf]
        if arr.ndim == 4:  # HWIO (depthwise: H W C 1) -> OIHW (depthwise: C 1 H W)
            arr = (
                arr.transpose(2, 3, 0, 1)
                if "depthwise" in key
                else arr.transpose(3, 2, 0, 1)
            )
        state[key] = torch.from_numpy(np.ascontiguousarray(arr))
    return state


def load_movenet(path: str | Path) -> MoveNet:
    """MoveNet with its pretrained weights, in eval mode."""
    net = MoveNet()
    net.load_state_dict(read_tfjs(path))
    return net.eval()


def trunk_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The TF.js weights keyed for a bare `MoveNetTrunk` (heads keep their keys, so
    loading them into a trunk reports them as unused)."""
    return {k.removeprefix("trunk."): v for k, v in read_tfjs(path).items()}
