"""Messages: header + raw buffers, round trip and zero copy."""

import numpy as np
import zmq

from pipeline.engine.messages import EOF, FRAME, Message, eof_message, pack, unpack


def test_round_trip_keeps_dtypes_shapes_and_header():
    arrays = {"image": np.arange(24, dtype=np.uint8).reshape(2, 4, 3),
              "scores": np.array([0.5, 0.25], np.float32),
              "ids": np.array([3, -1], np.int64),
              "valid": np.array([True, False]),
              "empty": np.zeros((0, 17, 3), np.float32)}
    msg = Message(FRAME, {"index": 7, "pts": None, "stage_ms": {"a": 1.5}}, arrays)
    back = unpack(pack(msg))
    assert back.kind == FRAME and back.header == msg.header
    for key, value in arrays.items():
        assert back.arrays[key].dtype == value.dtype
        np.testing.assert_array_equal(back.arrays[key], value)
    assert unpack(pack(eof_message(3))).kind == EOF


def test_inproc_hands_frames_over_without_copying():
    ctx = zmq.Context()
    pull, push = ctx.socket(zmq.PULL), ctx.socket(zmq.PUSH)
    pull.bind("inproc://zero-copy")
    push.connect("inproc://zero-copy")
    image = np.random.default_rng(0).integers(0, 255, (480, 640, 3), dtype=np.uint8)
    push.send_multipart(pack(Message(FRAME, {}, {"image": image})), copy=False)
    got = unpack(pull.recv_multipart(copy=False)).arrays["image"]
    assert np.shares_memory(got, image) or got.ctypes.data == image.ctypes.data
    np.testing.assert_array_equal(got, image)
    push.close()
    pull.close()
    ctx.term()
