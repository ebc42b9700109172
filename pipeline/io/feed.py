"""The results feed: every frame's people published on a ZeroMQ PUB socket, for AR,
try-on or analytics programs that want the parsing rather than the pixels.

One message per frame, in the versioned schema `partstream.results/1` documented in
docs/FEED.md (JSON or msgpack): frame index and timestamps, and per person the track
id, score, box, 17 COCO keypoints, the person mask and one mask per body part as COCO
run-length encodings (pycocotools can decode them). `docs/examples/subscriber.py` is a
subscriber to copy.

PUB never waits for subscribers: one that falls behind loses frames (ZeroMQ's
high-water mark), the pipeline does not slow down. The socket binds to loopback only
unless the user explicitly allows other hosts, because the feed shows people.

Masks are encoded from the run lengths of one joint (person, part) label map in
column-major order, then compressed by pycocotools: one pass over the frame whatever
the number of people and parts.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlparse

import msgpack
import numpy as np

from configs.errors import StageError
from pipeline.engine.messages import FramePeople, Message
from pipeline.engine.stage import Sink

SCHEMA = "partstream.results/1"
FORMATS = ("json", "msgpack")
SEND_HWM = 10  # frames queued per slow subscriber before it loses some
LINGER_MS = 500  # on close, how long the last frames may take to leave


def check_address(address: str, any_host: bool = False) -> None:
    """Refuse a feed reachable from other machines unless `any_host` is set."""
    parsed = urlparse(address)
    if parsed.scheme == "ipc":
        return
    if parsed.scheme != "tcp" or not parsed.port:
        raise StageError(
            f"cannot publish on '{address}': use tcp://127.0.0.1:PORT (or ipc://PATH)"
        )
    host = (parsed.hostname or "").strip("[]")
    if any_host or _is_loopback(host):
        return
    raise StageError(
        f"refusing to publish on {address}: it is reachable from other "
        "machines and the feed shows people; use tcp://127.0.0.1:PORT or "
        "pass --publish-any-host"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def label_rles(labels: np.ndarray, wanted: list[int]) -> dict[int, dict[str, Any]]:
    """COCO RLE (compressed, `counts` a str) of `labels == v` for each v in `wanted`."""
    from pycocotools import mask as coco_mask

    h, w = labels.shape
    flat = labels.T.ravel()  # COCO runs are column-major
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    starts = np.concatenate([[0], change])
    ends = np.concatenate([change, [flat.size]])
    values = flat[starts]
    order = np.argsort(values, kind="stable")  # grouped, still in order
    sorted_values = values[order]
    wanted_arr = np.asarray(wanted, dtype=values.dtype)
    lo = np.searchsorted(sorted_values, wanted_arr, "left")
    hi = np.searchsorted(sorted_values, wanted_arr, "right")
    raw = []
    for a, b in zip(lo, hi, strict=True):
        s, e = starts[order[a:b]], ends[order[a:b]]
        gaps = s - np.concatenate([[0], e[:-1]])
        counts = np.empty(2 * len(s) + 1, np.int64)
        counts[0:-1:2], counts[1:-1:2] = gaps, e - s
        counts[-1] = flat.size - (e[-1] if len(e) else 0)
        if counts[-1] == 0 and len(counts) > 1:  # as pycocotools: no empty tail
            counts = counts[:-1]
        raw.append({"size": [h, w], "counts": counts.tolist()})
    encoded = coco_mask.frPyObjects(raw, h, w) if raw else []
    return {
        v: {"size": [h, w], "counts": r["counts"].decode("ascii")}
        for v, r in zip(wanted, encoded, strict=True)
    }


def results_record(msg: Message, part_names: Sequence[str]) -> dict[str, Any]:
    """One frame of `partstream.results/1` (see docs/FEED.md)."""
    head = msg.header
    height, width = msg.pixels("image").shape[:2]
    p = msg.people or FramePeople.empty(height, width)
    count = len(p.scores)
    ids = p.ids()
    people = [
        {
            "track_id": int(ids[k]),
            "score": round(float(p.scores[k]), 4),
            "box": [round(float(v), 1) for v in p.boxes[k]],
            "keypoints": [
                [round(float(x), 1), round(float(y), 1), round(float(s), 3)]
                for x, y, s in p.keypoints[k]
            ],
        }
        for k in range(count)
    ]
    if count:
        _add_masks(people, p.instances, p.parts, part_names)
    return {
        "schema": SCHEMA,
        "frame": int(head.get("index", 0)),
        "capture_ts": float(head.get("capture_ts", 0.0)),
        "pts": None if head.get("pts") is None else float(head["pts"]),
        "publish_ts": time.time(),
        "width": int(width),
        "height": int(height),
        "part_names": list(part_names),
        "people": people,
    }


def _add_masks(
    people: list[dict[str, Any]],
    instances: np.ndarray,
    parts: np.ndarray,
    part_names: Sequence[str],
) -> None:
    """Person masks and per-part masks (part ids > 0 present in that person)."""
    n_parts = len(part_names)
    inst = instances.astype(np.int32)
    joint = inst * n_parts + np.minimum(parts, n_parts - 1)
    person_rles = label_rles(inst, list(range(1, len(people) + 1)))
    present = np.unique(joint[inst > 0])
    present = present[present % n_parts > 0]
    part_rles = label_rles(joint, present.tolist())
    for k, person in enumerate(people):
        person["mask"] = person_rles[k + 1]
        person["parts"] = {}
    for label, rle in part_rles.items():
        person_index, part = divmod(label, n_parts)
        people[person_index - 1]["parts"][part_names[part]] = rle


def pack_record(record: dict[str, Any], fmt: str) -> bytes:
    if fmt == "json":
        return json.dumps(record, separators=(",", ":")).encode()
    return msgpack.packb(record, use_bin_type=True)


def unpack_record(payload: bytes, fmt: str) -> dict[str, Any]:
    """The inverse of `pack_record` (what a subscriber does)."""
    if fmt == "json":
        return json.loads(payload)
    return msgpack.unpackb(payload, raw=False)


class FeedSink(Sink):
    """Publishes `results_record` of every frame (a `pipeline.engine.stage.Sink`)."""

    def __init__(
        self,
        address: str,
        fmt: str = "json",
        any_host: bool = False,
        part_names: Sequence[str] = (),
    ) -> None:
        self.address = address
        self.name = f"feed:{address}"
        self.fmt = fmt
        self.any_host = any_host
        # the model's taxonomy; set once the model is known (before the run starts)
        self.part_names = part_names
        self.frames = 0
        self._ctx: Any = None
        self._socket: Any = None

    def check(self) -> None:
        if self.fmt not in FORMATS:
            raise StageError(
                f"unknown feed format '{self.fmt}' (use {' or '.join(FORMATS)})"
            )
        check_address(self.address, self.any_host)

    def open(self) -> None:
        import zmq

        self.check()
        self._ctx = zmq.Context()
        self._socket = self._ctx.socket(zmq.PUB)
        self._socket.setsockopt(zmq.SNDHWM, SEND_HWM)
        self._socket.setsockopt(zmq.LINGER, LINGER_MS)
        try:
            self._socket.bind(self.address)
        except zmq.ZMQError as exc:
            self._close()
            raise StageError(f"cannot publish on {self.address}: {exc}") from exc

    def write(self, msg: Message) -> None:
        import zmq

        payload = pack_record(results_record(msg, self.part_names), self.fmt)
        try:
            self._socket.send(payload, zmq.NOBLOCK)
        except zmq.Again:  # every subscriber is full: they lose this frame
            return
        self.frames += 1

    def close(self) -> dict[str, Any]:
        self._close()
        return {"path": self.address, "frames": self.frames}

    def _close(self) -> None:
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self._ctx is not None:
            self._ctx.term()
            self._ctx = None
