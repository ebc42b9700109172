"""What the supervisor and the worker loop ask of a stage: typed protocols every
stage, source and sink implements (pipeline/stages/, pipeline/io/, bench's and the
tests' stand-ins), so nothing probes one for optional attributes.

A stage only knows its input and output message. Heavy setup belongs in `open`, which
runs inside the worker (so a stage object is cheap to build and to send to another
process).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol

from pipeline.engine.messages import Message


class Stage(Protocol):
    """Message in, message out."""

    name: str
    # live sources drop stale frames up to the input of the first bottleneck stage
    # (inference): dropping later would waste finished work
    bottleneck: bool
    # what the stage says once open (e.g. the backend that loaded), or None
    info: dict[str, Any] | None

    def open(self) -> None: ...

    def process(self, msg: Message) -> Message: ...

    def close(self) -> dict[str, Any] | None: ...


class Source(Protocol):
    """The first stage: produces frame messages until exhausted or told to stop.
    A source that waits (a stream reconnecting) may yield None now and then, so that
    a stop is obeyed while no frame comes."""

    name: str
    live: bool  # a camera or stream: drop stale frames rather than queue them
    total: int | None  # frames it will produce, when known (the progress bar)
    info: dict[str, Any] | None

    def check(self) -> None:
        """Before the model loads, without connecting: what can be known up front."""

    def open(self) -> None: ...

    def frames(self) -> Iterator[Message | None]: ...

    def close(self) -> dict[str, Any] | None: ...


class Sink(Protocol):
    """An output of the sink stage (pipeline/stages/sinks.py). Sinks subclass it for
    the defaults of what most of them do not need: `part_names`, `check`, `release`."""

    name: str
    # the model's part classes, set by the runner once the model is known (before
    # `open`); the results outputs write them, the others ignore them
    part_names: Sequence[str] = ()

    def check(self) -> None:
        """Before the model loads; must not connect or write: what can be known up
        front (a bad path, a protocol FFmpeg lacks, a missing device)."""

    def open(self) -> None: ...

    def write(self, msg: Message) -> None: ...

    def close(self) -> dict[str, Any]: ...

    def release(self) -> None:
        """After the run, whatever its end (the sink stage's `close` ran in a worker):
        end what a sink keeps across runs (a stream's relay)."""
