"""The real pipeline end to end (real ZeroMQ sockets, real PyAV decode and encode, the
real network: a tiny one, seeded random weights saved as a checkpoint): frame counts,
stats, transports agreeing, Ctrl-C and SIGTERM (also when the launcher ignored
SIGINT, as nohup does), and one-line errors for bad input that never cost an earlier
output file."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

import run_stream
from pipeline.options import StreamOptions
from pipeline.runner import run_stream as run_pipeline
from tests.pipeline.conftest import cli
from tests.pipeline.helpers import STATS_KEYS, decode_frames, write_clip

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data" / "video"
STAGES = {
    "source",
    "preprocess",
    "infer",
    "decode",
    "postprocess",
    "track",
    "render",
    "sink",
}


@pytest.fixture(autouse=True)
def no_home_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def count_frames(path: Path) -> int:
    with av.open(str(path)) as clip:
        return sum(1 for _ in clip.decode(video=0))


def test_synthetic_crowd_transcodes_every_frame_and_writes_stats(tiny, tmp_path):
    out, stats = tmp_path / "overlay.mp4", tmp_path / "stats.json"
    opts = StreamOptions(
        **tiny,
        backend="torch",
        outputs=[str(out)],
        hud=False,
        progress=False,
        synthetic={"frames": 6, "size": 128},
    )
    result = run_pipeline(opts)
    assert result.errors == []
    assert count_frames(out) == 6 == result.stats["frames"]
    assert result.stats["dropped"] == 0
    run_stream.main(
        [
            *cli(tiny),
            "--source",
            str(write_clip(tmp_path / "in.mp4", 5)),
            "--output",
            str(tmp_path / "o.mkv"),
            "--stats-json",
            str(stats),
            "--quiet",
        ]
    )
    data = json.loads(stats.read_text())
    assert set(data) == STATS_KEYS and set(data["stages"]) == STAGES
    assert set(data["latency_ms"]) == {"p50", "p95", "p99"}
    assert all(set(v) == {"p50", "p99"} for v in data["stages"].values())
    assert data["frames"] == 5 == count_frames(tmp_path / "o.mkv")


def test_input_size_runs_the_same_weights_at_that_size(tiny, tmp_path):
    """--input-size overrides the checkpoint's input size (the network is fully
    convolutional); without it the checkpoint's size runs. A size that is not a
    multiple of 32 is a one-line usage error."""
    from pipeline.runner import run_pipeline as assemble

    sizes = []
    for size in (None, 160):
        out = tmp_path / f"o{size}.mp4"
        opts = StreamOptions(**tiny, backend="torch", input_size=size,
                             outputs=[str(out)], hud=False, progress=False,
                             synthetic={"frames": 3, "size": 128})  # fmt: skip
        started: dict = {}
        result = assemble(opts, on_start=started.update)
        assert result.errors == [] and count_frames(out) == 3
        sizes.append(started["infer"]["input_size"])
    assert sizes == [128, 160]  # the tiny checkpoint is 128 px (helpers.TINY_CONFIG)
    with pytest.raises(SystemExit) as exit_info:
        run_stream.main([*cli(tiny), "--input-size", "100", "--quiet"])
    assert exit_info.value.code == 2


def test_still_images_run_at_the_still_size(tiny, tmp_path):
    """Photographs run at `pipeline.still_scale` x the checkpoint's side (128 -> 192),
    streams at the side itself (above), and --input-size wins over both."""
    from pipeline.runner import run_pipeline as assemble

    image = np.random.default_rng(0).integers(0, 255, (90, 120, 3), np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), image)
    sizes = []
    for size in (None, 160):
        opts = StreamOptions(**tiny, backend="torch", input_size=size,
                             source=str(tmp_path / "a.png"), hud=False,
                             results_json=str(tmp_path / f"r{size}.json"),
                             progress=False)  # fmt: skip
        started: dict = {}
        result = assemble(opts, on_start=started.update)
        assert result.errors == [] and (tmp_path / f"r{size}.json").is_file()
        sizes.append(started["infer"]["input_size"])
    assert sizes == [192, 160]


def test_config_decode_settings_apply_to_the_checkpoint(tiny, tmp_path):
    """A --config's decode settings are laid over the checkpoint's (which holds
    max_people 6): how the maps are read is the user's to set."""
    fewer = tmp_path / "fewer.yaml"
    fewer.write_text(f"base: {tiny['config']}\ndecode:\n  max_people: 2\n")
    people = {}
    for name, config in (("own", tiny["config"]), ("fewer", str(fewer))):
        res = tmp_path / f"{name}.json"
        opts = StreamOptions(
            config=config,
            checkpoint=tiny["checkpoint"],
            backend="torch",
            results_json=str(res),
            hud=False,
            progress=False,
            synthetic={"frames": 2, "size": 128},
        )
        assert run_pipeline(opts).errors == []
        people[name] = max(
            sum(r["image_id"] == i for r in json.loads(res.read_text())) for i in (0, 1)
        )
    assert people == {"own": 6, "fewer": 2}


@pytest.mark.parametrize(
    "name", ["vtest.avi", "two_people_occlusion.mp4", "basketball_240p.mp4"]
)
def test_shared_clips_keep_frame_count(tiny, tmp_path, name):
    clip = SHARED / name
    if not clip.is_file():
        pytest.skip(f"{clip} is not here (../shared is only on the dev machines)")
    out = tmp_path / "out.mp4"
    code = run_stream.main(
        [
            *cli(tiny),
            "--source",
            str(clip),
            "--output",
            str(out),
            "--max-frames",
            "4",
            "--quiet",
        ]
    )
    assert code == 0
    frames = decode_frames(out)
    with av.open(str(clip)) as src:
        stream = src.streams.video[0]
        size = (stream.height + stream.height % 2, stream.width + stream.width % 2)
    assert len(frames) == 4 and frames[0].shape[:2] == size


def test_threads_and_processes_give_identical_outputs(tiny, tmp_path):
    clip = write_clip(tmp_path / "in.mp4", 6, size=(96, 128))
    outputs = {}
    for transport in ("inproc", "ipc"):
        out = tmp_path / f"{transport}.mp4"
        result = run_pipeline(
            StreamOptions(
                source=str(clip),
                **tiny,
                backend="torch",
                outputs=[str(out)],
                hud=False,
                transport=transport,
                progress=False,
                display_threshold=0.0,
            )
        )  # draw every person the tiny network finds
        assert result.errors == [] and result.stats["people_mean"] > 0
        outputs[transport] = decode_frames(out)
    assert len(outputs["inproc"]) == len(outputs["ipc"]) == 6
    for a, b in zip(outputs["inproc"], outputs["ipc"], strict=True):
        np.testing.assert_array_equal(a, b)


def _ignore_sigint() -> None:
    """What nohup and a non-interactive shell's `cmd &` do to a child."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


@pytest.mark.parametrize(
    "sent, launcher_ignores_sigint, code",
    [
        (signal.SIGINT, False, 130),
        (signal.SIGINT, True, 130),
        (signal.SIGTERM, False, 143),
    ],
)
def test_signal_finalises_a_playable_file(
    tiny, tmp_path, sent, launcher_ignores_sigint, code
):
    clip = write_clip(tmp_path / "in.mp4", 400, size=(96, 128), fps=25)
    out = tmp_path / "cut.mp4"
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    proc = subprocess.Popen(
        [
            sys.executable,
            "run_stream.py",
            *cli(tiny),
            "--source",
            str(clip),
            "--realtime",
            "--output",
            str(out),
            "--quiet",
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=_ignore_sigint if launcher_ignores_sigint else None,
    )
    for line in proc.stderr:  # wait until frames flow
        if line.startswith("running:"):
            break
    time.sleep(3.0)
    proc.send_signal(sent)
    stdout, stderr = proc.communicate(timeout=60)
    assert proc.returncode == code, stderr
    assert "Traceback" not in stderr
    written = int(stdout.split("wrote ")[1].split("(")[1].split()[0])
    assert 0 < written < 400
    assert count_frames(out) == written


def write(tmp_path: Path, name: str, text: str) -> str:
    (tmp_path / name).write_text(text)
    return str(tmp_path / name)


def folder(tmp_path: Path, name: str) -> str:
    (tmp_path / name).mkdir()
    return str(tmp_path / name)


@pytest.mark.parametrize(
    "args, message",
    [
        (lambda t: ["--source", str(t / "nope.mp4")], "no such video file"),
        (lambda t: ["--source", write(t, "notes.mp4", "hello")], "not a video"),
        (
            lambda t: ["--config", write(t, "bad.yaml", "model: [unclosed")],
            "not valid YAML",
        ),
        (
            lambda t: ["--config", write(t, "typo.yaml", "input_sise: 256")],
            "unknown config key",
        ),
        (
            lambda t: ["--checkpoint", write(t, "model.pt", "not a checkpoint")],
            "corrupt or not a checkpoint",
        ),
        (lambda t: ["--output", str(t / "out.gif")], "unsupported file type"),
        (
            lambda t: ["--output", write(t, "a_file", "") + "/out.mp4"],
            "is a file, not a folder",
        ),
        (
            lambda t: ["--stats-json", write(t, "a_file", "") + "/s.json"],
            "is a file, not a folder",
        ),
        (lambda t: ["--output", folder(t, "clips.mp4")], "it is a folder"),
        # checked before the model loads: the corrupt checkpoint is never read
        (
            lambda t: [
                "--output",
                write(t, "a_file", "") + "/out.mp4",
                "--checkpoint",
                write(t, "model.pt", "not a checkpoint"),
            ],
            "cannot write",
        ),
        (lambda t: ["--backend", "tensorrt"], "TensorRT"),
        (lambda t: ["--camera", "57"], "camera 57 does not exist"),
        (lambda t: ["--output", "rtmp://127.0.0.1:9/live/x"], "Connection refused"),
        (lambda t: ["--publish", "tcp://0.0.0.0:5555"], "refusing to publish"),
        (lambda t: ["--virtual-cam"], "no virtual camera device"),
        (
            lambda t: ["--source", "rtsp://127.0.0.1:9/x", "--backend", "torch"],
            "Connection refused",
        ),  # (streams are opened once, by their worker)
    ],
)
def test_bad_input_is_one_line_and_nonzero(
    tmp_path, capsys, monkeypatch, args, message
):
    """...and costs no earlier output: the default out/overlay.mp4 (here in a folder
    of its own, never the repository's out/) is the one a previous run made."""
    monkeypatch.chdir(tmp_path)
    earlier = tmp_path / "out" / "overlay.mp4"
    earlier.parent.mkdir()
    earlier.write_bytes(b"an earlier run's overlay")
    code = run_stream.main([*args(tmp_path), "--max-frames", "2", "--quiet"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and err[0].startswith("error:") and message in err[0], err
    assert earlier.read_bytes() == b"an earlier run's overlay"
    assert sorted(p.name for p in earlier.parent.iterdir()) == ["overlay.mp4"]
