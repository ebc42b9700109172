#!/usr/bin/env bash
# Builds .venv-peer/ (repo root, git-ignored): a separate Python for the MediaPipe peer.
# mediapipe 0.10.14 brings its own opencv-contrib, protobuf, jax and numpy pins;
# keeping it out of the project's environment keeps them from touching ours. Idempotent.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
venv="$root/.venv-peer"
if [ ! -x "$venv/bin/python" ]; then
    python3 -m venv "$venv"
fi
if ! "$venv/bin/python" -c "import mediapipe" 2>/dev/null; then
    "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
        "mediapipe==0.10.14"
fi
echo "$venv/bin/python"
