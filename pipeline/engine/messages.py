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

Array keys, in the order stages add them:
    image       H x W x 3 uint8 RGB            source
    input       3 x S x S float32 RGB in [0,1]  preprocess
    parts, heatmap, offsets, limbs, hough, dspf  activated maps C x h x w float32,
                                   infer with the native decode engine
    keypoints, person_scores, person_valid, instances, parts   infer (graph engine) or
                                   decode (native engine; replaces the maps), model
                                   space: maps on the input or the cell grid
    keypoints P x 17 x 3, scores P, boxes P x 4, instances H x W uint16,
        parts H x W uint8                      postprocess (frame space; replaces above)
    track_ids   P int64 (-1 = not yet confirmed)   track
    rendered    H x W x 3 (or 4 with alpha) uint8  render
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np

FRAME = "frame"
EOF = "eof"


@dataclass
class Message:
    """One frame (or the end-of-stream marker) between two stages."""

    kind: str
    header: dict[str, Any] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)

    @property
    def is_eof(self) -> bool:
        return self.kind == EOF

    def stage_time(self, name: str, ms: float) -> None:
        """Record how long stage `name` spent on this frame."""
        self.header.setdefault("stage_ms", {})[name] = ms


def frame_message(
    image: np.ndarray, index: int, capture_ts: float, pts: float | None, fps: float
) -> Message:
    """A fresh frame as a source emits it."""
    header = {"index": index, "capture_ts": capture_ts, "pts": pts, "fps": fps,
              "dropped": 0, "stage_ms": {}}
    return Message(FRAME, header, {"image": image})


def eof_message(dropped: int = 0, reason: str = "end of stream") -> Message:
    return Message(EOF, {"dropped": dropped, "reason": reason})


def pack(msg: Message) -> list[Any]:
    """Multipart parts for `socket.send_multipart(parts, copy=False)`."""
    arrays = [np.ascontiguousarray(a) for a in msg.arrays.values()]
    layout = [[name, a.dtype.str, list(a.shape)]
              for name, a in zip(msg.arrays, arrays, strict=True)]
    head = msgpack.packb({"kind": msg.kind, "header": msg.header, "arrays": layout})
    return [head, *arrays]


def unpack(parts: list[Any]) -> Message:
    """Inverse of `pack`; arrays are read-only views on the received buffers."""
    head = msgpack.unpackb(_bytes(parts[0]), strict_map_key=False)
    arrays = {}
    for (name, dtype, shape), part in zip(head["arrays"], parts[1:], strict=True):
        buf = part.buffer if hasattr(part, "buffer") else part
        arrays[name] = np.frombuffer(buf, dtype=np.dtype(dtype)).reshape(shape)
    return Message(head["kind"], head["header"], arrays)


def _bytes(part: Any) -> bytes:
    return part.bytes if hasattr(part, "bytes") else bytes(part)
