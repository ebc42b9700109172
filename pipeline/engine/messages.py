"""What travels between stages: a small header plus named raw array buffers.

A message crosses a ZeroMQ socket as a multipart message: part 0 is a msgpack header
(kind, header dict, array names/dtypes/shapes), parts 1..n are the arrays' raw bytes.
Arrays are sent with `copy=False`, so over inproc:// a frame is handed over by reference
and over ipc:// / tcp:// it is copied once by the kernel, never pickled.

Header keys every frame carries (set by the source, extended by later stages):
    index       int    frame number in the source (gaps mean frames were dropped)
    capture_ts  float  wall-clock time (time.time()) the frame was captured/decoded
    pts         float  media time in seconds (None for sources without one)
    fps         float  the source's nominal frame rate
    dropped     int    frames dropped upstream so far (cumulative over all links)
    stage_ms    dict   processing time per stage name, milliseconds
    transform   dict   letterbox parameters (configs.letterbox.Letterbox), once set

Arrays, typed fields in the order stages set them, each in one space:
    image       H x W x 3 uint8 RGB, frame pixels           source
    input       3 x S x S float32 RGB in [0,1], model input   preprocess
    maps        the network's activated maps (parts, heatmap, offsets, limbs, hough,
                dspf; C x h x w float32, model space)   infer, native decode engine
    model       `ModelPeople`: the decode's five outputs, model space   infer (graph
                engine) or decode (native engine; replaces `maps`)
    people      `FramePeople`: valid people in frame pixels   postprocess (replaces
                `model` and `input`); its track_ids are set by track
    rendered    H x W x 3 (or 4 with alpha) uint8, frame pixels   render
    truth       ground truth a synthetic source adds (instances, track_ids)
On the wire each array is one part named by its field ("people.keypoints").
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import msgpack
import numpy as np

FRAME = "frame"
EOF = "eof"


@dataclass
class ModelPeople:
    """The decode's outputs in model space: every person slot (valid or not), keypoints
    in network-input pixels, the maps on the input grid (graph engine) or the cell
    grid (native engine)."""

    keypoints: np.ndarray  # P x 17 x 3
    person_scores: np.ndarray  # P
    person_valid: np.ndarray  # P bool
    instances: np.ndarray  # label k + 1 = slot k
    parts: np.ndarray

    @classmethod
    def from_outputs(cls, outputs: dict[str, Any]) -> ModelPeople:
        """The first image's of a batch of decode outputs (a runtime's or
        `nets.native`'s)."""
        return cls(**{f.name: np.asarray(outputs[f.name][0]) for f in fields(cls)})


@dataclass
class FramePeople:
    """Valid people only, in frame pixels: row k is person k, instance label k + 1 its
    mask."""

    keypoints: np.ndarray  # P x 17 x 3
    scores: np.ndarray  # P
    boxes: np.ndarray  # P x 4 (x0, y0, x1, y1)
    instances: np.ndarray  # H x W uint16
    parts: np.ndarray  # H x W uint8
    track_ids: np.ndarray | None = None  # P int64, -1 = not yet confirmed

    def ids(self) -> np.ndarray:
        """The track ids; all -1 (unconfirmed) before the track stage ran."""
        if self.track_ids is None:
            return np.full(len(self.scores), -1, np.int64)
        return self.track_ids

    @classmethod
    def empty(cls, height: int, width: int) -> FramePeople:
        """Nobody in an H x W frame."""
        return cls(
            np.zeros((0, 17, 3), np.float32),
            np.zeros(0, np.float32),
            np.zeros((0, 4), np.float32),
            np.zeros((height, width), np.uint16),
            np.zeros((height, width), np.uint8),
        )


_GROUPS = {"model": ModelPeople, "people": FramePeople}


@dataclass
class Message:
    """One frame (or the end-of-stream marker) between two stages."""

    kind: str
    header: dict[str, Any] = field(default_factory=dict)
    image: np.ndarray | None = None
    input: np.ndarray | None = None
    maps: dict[str, np.ndarray] = field(default_factory=dict)
    model: ModelPeople | None = None
    people: FramePeople | None = None
    rendered: np.ndarray | None = None
    truth: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def is_eof(self) -> bool:
        return self.kind == EOF

    def stage_time(self, name: str, ms: float) -> None:
        """Record how long stage `name` spent on this frame."""
        self.header.setdefault("stage_ms", {})[name] = ms

    def pixels(self, which: str) -> np.ndarray:
        """The frame as captured ("image") or as drawn ("rendered")."""
        out = self.rendered if which == "rendered" else self.image
        if out is None:
            raise KeyError(f"the message holds no {which} frame")
        return out


def frame_message(
    image: np.ndarray, index: int, capture_ts: float, pts: float | None, fps: float
) -> Message:
    """A fresh frame as a source emits it."""
    header = {
        "index": index,
        "capture_ts": capture_ts,
        "pts": pts,
        "fps": fps,
        "dropped": 0,
        "stage_ms": {},
    }
    return Message(FRAME, header, image=image)


def eof_message(dropped: int = 0, reason: str = "end of stream") -> Message:
    return Message(EOF, {"dropped": dropped, "reason": reason})


def arrays(msg: Message) -> dict[str, np.ndarray]:
    """Every array of `msg` by its wire name ("image", "maps.heatmap",
    "people.keypoints", ...)."""
    out = {
        name: a
        for name in ("image", "input", "rendered")
        if (a := getattr(msg, name)) is not None
    }
    for group in ("maps", "truth"):
        out.update({f"{group}.{k}": a for k, a in getattr(msg, group).items()})
    for group in _GROUPS:
        people = getattr(msg, group)
        if people is not None:
            out.update(
                {
                    f"{group}.{f.name}": a
                    for f in fields(people)
                    if (a := getattr(people, f.name)) is not None
                }
            )
    return out


def pack(msg: Message) -> list[Any]:
    """Multipart parts for `socket.send_multipart(parts, copy=False)`."""
    named = arrays(msg)
    parts = [np.ascontiguousarray(a) for a in named.values()]
    layout = [
        [name, a.dtype.str, list(a.shape)] for name, a in zip(named, parts, strict=True)
    ]
    head = msgpack.packb({"kind": msg.kind, "header": msg.header, "arrays": layout})
    return [head, *parts]


def unpack(parts: list[Any]) -> Message:
    """Inverse of `pack`; arrays are read-only views on the received buffers."""
    head = msgpack.unpackb(_bytes(parts[0]), strict_map_key=False)
    msg = Message(head["kind"], head["header"])
    grouped: dict[str, dict[str, np.ndarray]] = {
        "maps": msg.maps,
        "truth": msg.truth,
        **{g: {} for g in _GROUPS},
    }
    for (name, dtype, shape), part in zip(head["arrays"], parts[1:], strict=True):
        buf = part.buffer if hasattr(part, "buffer") else part
        array = np.frombuffer(buf, dtype=np.dtype(dtype)).reshape(shape)
        group, _, key = name.partition(".")
        if key:
            grouped[group][key] = array
        else:
            setattr(msg, name, array)
    for group, cls in _GROUPS.items():
        if grouped[group]:
            setattr(msg, group, cls(**grouped[group]))
    return msg


def _bytes(part: Any) -> bytes:
    return part.bytes if hasattr(part, "bytes") else bytes(part)
