"""The results feed (pipeline/io/feed.py) over real ZeroMQ sockets on loopback: the
schema a subscriber gets, masks that decode back to the pipeline's maps, loopback-only
binds, and the example subscriber in docs/ working against it."""

import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import zmq
from pycocotools import mask as coco_mask

from configs.errors import StageError
from pipeline.engine.messages import FramePeople, frame_message
from pipeline.engine.transport import free_port
from pipeline.io.feed import SCHEMA, FeedSink, check_address, label_rles, unpack_record

ROOT = Path(__file__).resolve().parents[2]
PARTS = ["background", "head", "torso", "arm", "leg"]


def scene_message(index: int = 7):
    """Two people side by side (labels 1, 2) with parts, as postprocess/track leave
    them, plus the rendered frame."""
    h, w = 40, 60
    instances = np.zeros((h, w), np.uint16)
    parts = np.zeros((h, w), np.uint8)
    instances[5:35, 5:25], instances[8:38, 32:55] = 1, 2
    parts[5:12, 5:25], parts[12:25, 5:25], parts[25:35, 5:25] = 1, 2, 4
    parts[8:15, 32:55], parts[15:38, 32:55] = 1, 3
    parts[20:22, 10:12] = 0  # a person pixel without a part label
    msg = frame_message(np.zeros((h, w, 3), np.uint8), index, 1000.5, index / 10, 10.0)
    rng = np.random.default_rng(index)
    msg.people = FramePeople(
        instances=instances,
        parts=parts,
        keypoints=rng.uniform(0, 40, (2, 17, 3)).astype(np.float32),
        scores=np.asarray([0.9, 0.6], np.float32),
        boxes=np.asarray([[5, 5, 25, 35], [32, 8, 55, 38]], np.float32),
        track_ids=np.asarray([3, -1], np.int64),
    )
    msg.rendered = np.zeros((h, w, 3), np.uint8)
    return msg


@pytest.mark.parametrize("shape, labels", [((1, 1), 2), ((7, 9), 4), ((40, 33), 6)])
def test_rles_equal_pycocotools(shape, labels):
    rng = np.random.default_rng(sum(shape))
    values = rng.integers(0, labels, shape)
    wanted = list(range(labels + 1))  # includes a label that is absent
    for v, rle in label_rles(values, wanted).items():
        ref = coco_mask.encode(np.asfortranarray((values == v).astype(np.uint8)))
        assert rle == {"size": list(shape), "counts": ref["counts"].decode()}


@pytest.mark.parametrize(
    "address, any_host, ok",
    [
        ("tcp://127.0.0.1:5555", False, True),
        ("tcp://localhost:5555", False, True),
        ("tcp://[::1]:5555", False, True),
        ("ipc:///tmp/partstream-feed", False, True),
        ("tcp://0.0.0.0:5555", False, False),
        ("tcp://*:5555", False, False),
        ("tcp://192.168.1.4:5555", False, False),
        ("tcp://0.0.0.0:5555", True, True),
        ("udp://127.0.0.1:5555", True, False),
        ("tcp://127.0.0.1", False, False),
    ],
)
def test_feed_binds_to_loopback_unless_told(address, any_host, ok):
    if ok:
        check_address(address, any_host)
        return
    with pytest.raises(StageError) as err:
        check_address(address, any_host)
    assert "\n" not in str(err.value)
    if "5555" in address and address.startswith("tcp"):
        assert "--publish-any-host" in str(err.value)


def receive(sink: FeedSink, address: str, count: int, fmt: str) -> list[dict]:
    """Subscribe, then publish until `count` frames arrived (a SUB socket misses
    what is sent before its subscription reaches the publisher)."""
    ctx = zmq.Context.instance()
    sub = ctx.socket(zmq.SUB)
    sub.setsockopt(zmq.SUBSCRIBE, b"")
    sub.connect(address)
    got, index, deadline = [], 0, time.monotonic() + 10
    while len(got) < count and time.monotonic() < deadline:
        sink.write(scene_message(index))
        index += 1
        while sub.poll(20, zmq.POLLIN):
            got.append(unpack_record(sub.recv(), fmt))
    sub.close(linger=0)
    return got[:count]


@pytest.mark.parametrize("fmt", ["json", "msgpack"])
def test_subscriber_gets_the_documented_schema(fmt):
    address = f"tcp://127.0.0.1:{free_port()}"
    sink = FeedSink(address, fmt, part_names=PARTS)
    sink.open()
    try:
        frames = receive(sink, address, 3, fmt)
    finally:
        report = sink.close()
    assert len(frames) == 3 and report["frames"] >= 3
    first = frames[0]
    expected = scene_message(first["frame"])
    assert set(first) == {
        "schema",
        "frame",
        "capture_ts",
        "pts",
        "publish_ts",
        "width",
        "height",
        "part_names",
        "people",
    }
    assert first["schema"] == SCHEMA and first["part_names"] == PARTS
    assert (first["width"], first["height"]) == (60, 40)
    assert first["capture_ts"] == 1000.5 and first["pts"] == first["frame"] / 10
    assert [f["frame"] for f in frames] == sorted(f["frame"] for f in frames)
    a = vars(expected.people)
    for k, person in enumerate(first["people"]):
        assert set(person) == {"track_id", "score", "box", "keypoints", "mask", "parts"}
        assert person["track_id"] == a["track_ids"][k]
        assert person["score"] == pytest.approx(a["scores"][k], abs=1e-4)
        assert person["box"] == pytest.approx(a["boxes"][k].tolist(), abs=0.05)
        assert np.allclose(person["keypoints"], a["keypoints"][k], atol=0.05)
        mask = coco_mask.decode(
            {
                "size": person["mask"]["size"],
                "counts": person["mask"]["counts"].encode(),
            }
        )
        np.testing.assert_array_equal(mask, a["instances"] == k + 1)
        present = {
            PARTS[p] for p in np.unique(a["parts"][a["instances"] == k + 1]) if p > 0
        }
        assert set(person["parts"]) == present
        for name, rle in person["parts"].items():
            part = coco_mask.decode(
                {"size": rle["size"], "counts": rle["counts"].encode()}
            )
            truth = (a["instances"] == k + 1) & (a["parts"] == PARTS.index(name))
            np.testing.assert_array_equal(part, truth)


def test_a_taken_port_is_one_line_error():
    address = f"tcp://127.0.0.1:{free_port()}"
    first = FeedSink(address, part_names=PARTS)
    first.open()
    try:
        with pytest.raises(StageError, match="cannot publish on"):
            FeedSink(address, part_names=PARTS).open()
    finally:
        first.close()


def test_example_subscriber_reads_the_feed():
    address = f"tcp://127.0.0.1:{free_port()}"
    sink = FeedSink(address, "msgpack", part_names=PARTS)
    sink.open()
    proc = subprocess.Popen(
        [
            sys.executable,
            "docs/examples/subscriber.py",
            address,
            "--format",
            "msgpack",
            "--count",
            "2",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    index, deadline = 0, time.monotonic() + 20
    try:
        while proc.poll() is None and time.monotonic() < deadline:
            sink.write(scene_message(index))
            index += 1
            time.sleep(0.02)
    finally:
        sink.close()
        proc.kill()
    out, err = proc.communicate()
    lines = out.strip().splitlines()
    assert proc.returncode == 0, err
    assert len(lines) == 2 and all("2 people" in line for line in lines)
    assert "id 3 (0.90) parts torso, leg, head" in lines[0]
