"""Stage 7: where rendered frames go. The sinks themselves are I/O adapters in
pipeline/io/ (video file, network stream, results feed, results JSON, virtual camera,
window); this stage only fans every frame out to them.

`SinkStage` feeds every frame to each of its sinks; a sink that fails mid-run is
dropped with a one-line warning and the others keep going (the run fails only when
none is left). Closing always finalises: a file sink writes its trailer, so a run
stopped by Ctrl-C leaves a playable file holding every frame that reached it.
"""

from __future__ import annotations

import logging
from typing import Any

from configs.errors import StageError
from pipeline.engine.messages import Message
from pipeline.engine.stage import Sink
from pipeline.engine.worker import describe

log = logging.getLogger(__name__)


class SinkStage:
    """The last stage: hands every frame to each sink."""

    name = "sink"
    bottleneck = False
    info: dict[str, Any] | None = None

    def __init__(self, sinks: list[Sink]) -> None:
        self.sinks = list(sinks)
        self.failed: list[str] = []

    def open(self) -> None:
        opened = []
        try:
            for sink in self.sinks:
                sink.open()
                opened.append(sink)
        except Exception:
            for sink in opened:
                sink.close()
            raise

    def process(self, msg: Message) -> Message:
        for sink in list(self.sinks):
            try:
                sink.write(msg)
            except Exception as exc:
                if len(self.sinks) == 1:
                    raise StageError(f"{sink.name} failed: {describe(exc)}") from exc
                log.warning(
                    "%s failed (%s); the other outputs continue",
                    sink.name,
                    describe(exc),
                )
                self.failed.append(sink.name)
                self.sinks.remove(sink)
                _quiet_close(sink)
        return msg

    def close(self) -> dict[str, Any]:
        return {"outputs": [s.close() for s in self.sinks], "failed": self.failed}


def _quiet_close(sink: Sink) -> None:
    try:
        sink.close()
    except Exception as exc:
        log.warning("closing %s: %s", sink.name, describe(exc))
