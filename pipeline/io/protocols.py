"""Where video comes from and goes to: URL schemes, and the FFmpeg options each needs.

One table for inputs and outputs so a scheme's quirks live in one place: which schemes
are live (latest frame wins, reconnect when they drop), which muxer a stream output
uses (FLV for RTMP, MPEG-TS for UDP/TCP/SRT), the low-latency demuxer options, and the
protocols PyAV's wheels lack (libsrt).
"""

from __future__ import annotations

import socket
from pathlib import PurePosixPath
from urllib.parse import urlparse

from configs.errors import StageError

LIVE_SCHEMES = ("rtsp", "rtsps", "rtmp", "rtmps", "udp", "tcp", "srt", "rtp")
HTTP_SCHEMES = ("http", "https")
# An http(s) URL with one of these endings is a file on a web server, not a stream.
FILE_SUFFIXES = (".mp4", ".m4v", ".mkv", ".mov", ".avi", ".webm", ".mpg", ".mpeg")
# Muxer per output scheme: what OBS's Media Source and stream servers expect.
STREAM_MUXERS = {
    "rtmp": "flv",
    "rtmps": "flv",
    "udp": "mpegts",
    "tcp": "mpegts",
    "srt": "mpegts",
}
RTSP_TRANSPORTS = ("tcp", "udp")
RTSP_FOREVER = "86400"
# No input buffering and a short probe: the packets read while probing are dropped
# instead of delivered late, and (re)connecting takes well under a second instead of
# FFmpeg's default 5 s analysis, which RTMP always pays because its FLV header
# announces an audio stream that never comes.
LOW_LATENCY = {
    "fflags": "nobuffer",
    "flags": "low_delay",
    "analyzeduration": "200000",
    "probesize": "500000",
}
SRT_MISSING = (
    "srt:// needs FFmpeg with libsrt, which PyAV's wheels lack: install "
    "PyAV built against an FFmpeg with --enable-libsrt, or use udp://, "
    "tcp:// or rtmp:// instead"
)


def scheme(location: str) -> str:
    """The URL scheme in lower case, or "" for a file path ("C:" is a drive)."""
    value = urlparse(str(location)).scheme.lower()
    return value if len(value) > 1 else ""


def is_live(location: str) -> bool:
    """True for sources that keep producing whether we keep up or not."""
    kind = scheme(location)
    if kind in HTTP_SCHEMES:
        suffix = PurePosixPath(urlparse(location).path).suffix.lower()
        return suffix not in FILE_SUFFIXES
    return kind in LIVE_SCHEMES


def input_options(
    location: str,
    rtsp_transport: str = "tcp",
    listen: bool = False,
    listen_timeout_s: float | None = None,
) -> dict[str, str]:
    """FFmpeg demuxer/protocol options for reading `location`.

    `listen`: PartStream is the server and waits for a publisher (OBS, ffmpeg, a
    camera) to push to this URL: RTMP and RTSP only. `listen_timeout_s` bounds that
    wait (None: wait forever).
    """
    kind = scheme(location)
    if kind == "srt" and not protocol_available("srt"):
        raise StageError(SRT_MISSING)
    if rtsp_transport not in RTSP_TRANSPORTS:
        raise StageError(
            f"unknown RTSP transport '{rtsp_transport}' "
            f"(use {' or '.join(RTSP_TRANSPORTS)})"
        )
    options = dict(LOW_LATENCY) if is_live(location) else {}
    if kind in ("rtsp", "rtsps"):
        options["rtsp_transport"] = rtsp_transport
    if listen:
        wait = None if listen_timeout_s is None else str(max(1, int(listen_timeout_s)))
        if kind in ("rtmp", "rtmps"):
            options.update(listen="1", timeout=wait or "-1")
        elif kind in ("rtsp", "rtsps"):  # RTSP rejects -1: "forever" is a day
            options.update(rtsp_flags="listen", listen_timeout=wait or RTSP_FOREVER)
        else:
            raise StageError(
                f"--listen works with rtmp:// and rtsp:// sources, "
                f"not {kind or 'files'}"
            )
    return options


def stream_muxer(location: str) -> str:
    """The container format a stream output at `location` is sent in."""
    kind = scheme(location)
    if kind not in STREAM_MUXERS:
        raise StageError(
            f"cannot stream to {location}: use "
            + ", ".join(f"{k}://" for k in STREAM_MUXERS)
        )
    if kind == "srt" and not protocol_available("srt"):
        raise StageError(SRT_MISSING)
    return STREAM_MUXERS[kind]


def protocol_available(name: str) -> bool:
    """Whether this FFmpeg build knows protocol `name`.

    PyAV exposes no protocol list; opening a URL of that scheme on a closed loopback
    port fails at once either way, with "protocol not found" only if it is missing.
    """
    import av

    try:
        av.open(f"{name}://127.0.0.1:1", timeout=(0.5, 0.5)).close()
    except av.error.ProtocolNotFoundError:
        return False
    except (av.error.FFmpegError, OSError):
        return True
    return True


def connect_output(location: str, timeout_s: float = 3.0) -> socket.socket | None:
    """The connection to a TCP-based output's receiver, or one clear line if nobody
    listens there; None for outputs we do not connect to (UDP, SRT, `?listen`).

    The connection is the stream itself (`pipeline.io.relay`): a single-shot receiver
    takes the first connection it gets as the stream, so a probe that closes would
    leave it nothing.
    """
    kind = scheme(location)
    if kind not in ("rtmp", "tcp"):
        return None
    parsed = urlparse(location)
    if "listen" in parsed.query:
        return None
    port = parsed.port or (1935 if kind == "rtmp" else None)
    if parsed.hostname is None or port is None:
        raise StageError(f"output {location} needs a host and a port")
    try:
        upstream = socket.create_connection((parsed.hostname, port), timeout=timeout_s)
    except TimeoutError as exc:
        raise StageError(
            f"cannot open output {location}: no answer in {timeout_s:.0f} s"
        ) from exc
    except OSError as exc:
        why = exc.strerror or type(exc).__name__
        raise StageError(f"cannot open output {location}: {why}") from exc
    upstream.settimeout(None)
    return upstream
