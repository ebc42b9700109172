"""A PartStream results-feed subscriber: copy it into your AR / try-on / analytics app.

    python run_stream.py --camera 0 --publish tcp://127.0.0.1:5555
    python docs/examples/subscriber.py tcp://127.0.0.1:5555

One line per frame: who is there, where, and how many pixels each body part covers.
`person_parts` turns a person's part masks into numpy arrays, which is what an overlay
or a garment warp needs. The message schema is in docs/FEED.md. Needs pyzmq, numpy,
pycocotools (and msgpack for --format msgpack); nothing from PartStream itself.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import zmq
from pycocotools import mask as coco_mask

SCHEMA = "partstream.results"
MAJOR = 1  # the schema version this code understands


def unpack_record(payload: bytes, fmt: str) -> dict:
    if fmt == "msgpack":
        import msgpack

        return msgpack.unpackb(payload, raw=False)
    return json.loads(payload)


def rle_to_mask(rle: dict) -> np.ndarray:
    """A COCO RLE -> H x W bool array."""
    return coco_mask.decode(
        {"size": rle["size"], "counts": rle["counts"].encode()}
    ).astype(bool)


def person_parts(person: dict) -> dict[str, np.ndarray]:
    """Part name -> H x W bool mask, for the parts this person shows."""
    return {name: rle_to_mask(rle) for name, rle in person.get("parts", {}).items()}


def describe(frame: dict) -> str:
    lag_ms = 1000 * (time.time() - frame["capture_ts"])
    people = []
    for person in frame["people"]:
        areas = {name: int(m.sum()) for name, m in person_parts(person).items()}
        biggest = sorted(areas, key=areas.get, reverse=True)[:3]
        who = f"id {person['track_id']}" if person["track_id"] >= 0 else "new"
        people.append(f"{who} ({person['score']:.2f}) parts {', '.join(biggest)}")
    return (
        f"frame {frame['frame']}: {len(frame['people'])} people, "
        f"{lag_ms:.0f} ms after capture" + "".join(f"; {p}" for p in people)
    )


def main() -> None:
    parser = argparse.ArgumentParser(description="Print PartStream's results feed.")
    parser.add_argument("address", nargs="?", default="tcp://127.0.0.1:5555")
    parser.add_argument(
        "--format",
        default="json",
        choices=("json", "msgpack"),
        help="what run_stream.py was given as --publish-format",
    )
    parser.add_argument(
        "--count",
        type=int,
        default=0,
        help="stop after this many frames (default: run until Ctrl-C)",
    )
    args = parser.parse_args()

    socket = zmq.Context.instance().socket(zmq.SUB)
    socket.setsockopt(zmq.SUBSCRIBE, b"")
    socket.setsockopt(zmq.RCVHWM, 4)  # keep up with the newest frames, drop the rest
    socket.connect(args.address)
    seen = 0
    try:
        while args.count == 0 or seen < args.count:
            frame = unpack_record(socket.recv(), args.format)
            name, _, version = frame.get("schema", "").partition("/")
            if name != SCHEMA or int(version or 0) != MAJOR:
                print(f"skipping a message in schema '{frame.get('schema')}'")
                continue
            print(describe(frame), flush=True)
            seen += 1
    except KeyboardInterrupt:
        pass
    finally:
        socket.close(linger=0)


if __name__ == "__main__":
    main()
