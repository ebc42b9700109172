"""Links: keep-all delivers everything in order; latest-frame-wins drops and counts."""

import time

import numpy as np
import pytest
import zmq

from pipeline.engine.messages import eof_message, frame_message
from pipeline.engine.transport import Endpoints, Receiver, Sender


def frame(i: int):
    image = np.full((4, 4, 3), i % 256, np.uint8)
    return frame_message(image, i, time.time(), None, 10)


@pytest.mark.parametrize("transport", ["inproc", "ipc", "tcp"])
def test_keep_all_delivers_every_frame_in_order(transport):
    ctx = zmq.Context()
    address = Endpoints(transport).address("link")
    rx = Receiver(ctx, address, "all", 2)
    tx = Sender(ctx, address, "all", 2)
    got = []
    for i in range(30):
        assert tx.send(frame(i))
        if i % 3 == 2:  # the consumer lags, the producer waits
            while rx.ready():
                got.append(rx.recv().header["index"])
    tx.send(eof_message())
    while not (msg := rx.recv()).is_eof:
        got.append(msg.header["index"])
    assert got == list(range(30)) and msg.header["dropped"] == 0
    tx.close()
    rx.close()
    ctx.term()


def test_latest_frame_wins_and_drops_are_counted():
    ctx = zmq.Context()
    address = Endpoints("inproc").address("link")
    rx = Receiver(ctx, address, "latest", 2)
    tx = Sender(ctx, address, "latest", 2)
    sent = sum(tx.send(frame(i)) for i in range(10))  # nobody reads: most are dropped
    assert sent < 10 and tx.dropped == 10 - sent
    msg = rx.recv()
    assert msg.header["index"] == sent - 1  # the newest that got through
    assert msg.header["dropped"] == sent - 1  # older ones queued: skipped
    tx.send(eof_message())
    eof = rx.recv()  # the end marker carries the final count
    assert eof.is_eof and eof.header["dropped"] == 9
    tx.close()
    rx.close()
    ctx.term()
