"""Messages: header + raw buffers, round trip and zero copy."""

import numpy as np
import zmq

from pipeline.engine.messages import (
    EOF,
    FRAME,
    FramePeople,
    Message,
    ModelPeople,
    arrays,
    eof_message,
    pack,
    unpack,
)


def test_round_trip_keeps_fields_dtypes_shapes_and_header():
    maps = np.zeros((2, 3), np.uint8)
    model = ModelPeople(
        np.zeros((2, 17, 3), np.float32),
        np.array([0.5, 0.25]),
        np.array([True, False]),
        maps,
        maps + 1,
    )
    people = FramePeople(
        np.zeros((0, 17, 3), np.float32),
        np.zeros(0, np.float32),
        np.zeros((0, 4), np.float32),
        maps.astype(np.uint16),
        maps,
        track_ids=np.array([3, -1], np.int64),
    )
    msg = Message(
        FRAME,
        {"index": 7, "pts": None, "stage_ms": {"a": 1.5}},
        image=np.arange(24, dtype=np.uint8).reshape(2, 4, 3),
        maps={"heatmap": np.ones((17, 2, 3), np.float32)},
        model=model,
        people=people,
        truth={"track_ids": np.array([1], np.int64)},
    )
    back = unpack(pack(msg))
    assert back.kind == FRAME and back.header == msg.header
    assert back.input is None and back.rendered is None
    assert isinstance(back.model, ModelPeople) and isinstance(back.people, FramePeople)
    sent, got = arrays(msg), arrays(back)
    assert list(got) == list(sent) and "people.track_ids" in got
    for key, value in sent.items():
        assert got[key].dtype == value.dtype
        np.testing.assert_array_equal(got[key], value)
    assert unpack(pack(eof_message(3))).kind == EOF


def test_inproc_hands_frames_over_without_copying():
    ctx = zmq.Context()
    pull, push = ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH)
    pull.bind("inproc://zero-copy")
    push.connect("inproc://zero-copy")
    image = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    push.send_multipart(pack(Message(FRAME, {}, image=image)), copy=False)
    got = unpack(pull.recv_multipart(copy=False)).image
    assert np.shares_memory(got, image) or got.ctypes.data == image.ctypes.data
    np.testing.assert_array_equal(got, image)
    push.close()
    pull.close()
    ctx.term()
