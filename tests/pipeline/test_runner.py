"""Runner and worker loop with stand-in stages: delivery over every transport, drops
for live sources, and the shutdown rules (end of stream, errors, SIGINT)."""

import signal
import threading
import time

import pytest

from pipeline.engine.supervisor import Runner, RunOptions, link_policies
from tests.pipeline.helpers import Collect, PatternSource, Slow, pattern


def run(stages, **options):
    return Runner(stages, RunOptions(progress=False, hwm=2, **options)).run()


@pytest.mark.parametrize("transport", ["inproc", "ipc", "tcp"])
def test_every_frame_arrives_in_order(transport):
    result = run(
        [PatternSource(25), Slow("a"), Slow("b"), Collect()], transport=transport
    )
    assert result.errors == []
    assert result.reports["sink"]["seen"] == list(range(25))
    assert result.reports["sink"]["sums"] == [int(pattern(i).sum()) for i in range(25)]
    assert result.stats["frames"] == 25 and result.stats["dropped"] == 0
    assert set(result.stats["stages"]) == {"a", "b", "sink"}


def test_live_source_drops_stale_frames_and_counts_them():
    result = run(
        [PatternSource(60, live=True, fps=200), Slow("infer", 0.03), Collect()]
    )
    seen = result.reports["sink"]["seen"]
    assert seen == sorted(seen) and 0 < len(seen) < 60
    assert result.stats["dropped"] == 60 - len(seen)
    assert result.stats["frames"] == len(seen)


def test_latest_policy_only_up_to_the_bottleneck():
    stages = [PatternSource(live=True), Slow("pre"), Slow("infer"), Collect()]
    stages[1].bottleneck = False
    assert link_policies(stages, "auto") == ["latest", "latest", "all"]
    assert link_policies(stages, "all") == ["all"] * 3
    assert link_policies([PatternSource(), Collect()], "auto") == ["all"]


def test_error_mid_run_stops_cleanly_with_one_line():
    result = run([PatternSource(200, fps=100), Slow("a", fail_at=5), Collect()])
    assert result.errors == ["a: RuntimeError: boom"]
    assert result.reports["sink"]["seen"] == list(range(5))  # earlier frames written


def test_failure_while_starting_aborts_at_once():
    start = time.monotonic()
    result = run([PatternSource(10), Collect(fail_open=True)])
    assert result.errors == ["collector cannot start"]
    assert time.monotonic() - start < 10


def test_sigint_drains_and_keeps_every_processed_frame():
    # to the main thread itself (as a terminal's Ctrl-C reaches Python's handler):
    # os.kill lets the kernel pick any thread, and after other tests a runtime's
    # worker thread (OpenVINO's) took it and the process crashed
    main = threading.main_thread().ident
    timer = threading.Timer(1.0, signal.pthread_kill, (main, signal.SIGINT))
    timer.start()
    result = run([PatternSource(1000, fps=50), Slow("a"), Collect()])
    timer.join()
    seen = result.reports["sink"]["seen"]
    assert result.interrupted and result.errors == []
    assert 10 < len(seen) < 1000 and seen == list(range(len(seen)))
    assert result.stats["frames"] == len(seen)
