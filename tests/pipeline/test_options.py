"""The pipeline's options are defined once: StreamOptions has one field per flag of
run_stream.py (and its defaults are the flags'), so the CLI, the benchmarks and the
identity evaluation cannot drift apart."""

import argparse
from dataclasses import fields

from pipeline.options import StreamOptions, add_arguments

NOT_FLAGS = {"synthetic"}  # SyntheticSource settings, set by code only


def parsed(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser()
    add_arguments(p)
    return p.parse_args(argv)


def test_every_flag_is_a_field_with_the_flags_default():
    flags = vars(parsed([]))
    names = {f.name for f in fields(StreamOptions)}
    assert names - NOT_FLAGS == set(flags) - {"stats_json"}
    defaults = StreamOptions()
    for name, value in flags.items():
        if name in names:
            assert getattr(defaults, name) == (value if name != "outputs" else [])


def test_from_args_takes_the_flags():
    args = parsed(
        [
            "--source",
            "clip.mp4",
            "--output",
            "a.mp4",
            "--output",
            "b.mkv",
            "--timeout",
            "2",
            "--quiet",
            "--backend",
            "torch",
        ]
    )
    opts = StreamOptions.from_args(args)
    assert (opts.source, opts.outputs, opts.timeout_s) == (
        "clip.mp4",
        ["a.mp4", "b.mkv"],
        2.0,
    )
    assert opts.progress is False and opts.backend == "torch"
