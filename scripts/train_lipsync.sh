#!/usr/bin/env bash
# Refit the shipped lip-sync model (weights/lipsync.safetensors) from the talking clips in
# ../shared/media (not in the repository). About 5 minutes on 2 cores.
set -euo pipefail
cd "$(dirname "$0")/.."
M=${MEDIA:-../shared/media}
exec .venv/bin/python -m talkhead.train.lipsync -o "${1:-weights/lipsync.safetensors}" \
    "$M/driving/styletalk__Obama_clip1.mp4=$M/speech/styletalk__Obama_clip1.wav" \
    "$M/driving/styletalk__andrew_clip_1.mp4=$M/speech/styletalk__andrew_clip_1.wav" \
    "$M/driving/styletalk__feifeili_clip1.mp4=$M/speech/styletalk__feifeili_clip1.wav" \
    "$M/driving/LivePortrait__d6.mp4" "$M/driving/LivePortrait__d10.mp4" "$M/driving/LivePortrait__d11.mp4" \
    "$M/talking_av/PCAVS__681100216.mp4" "$M/talking_av/PCAVS__741400104.mp4" "$M/talking_av/PCAVS__741400163.mp4" \
    "$M/talking_av/SadTalker__WDA_AlexandriaOcasioCortez_000.mp4" "$M/talking_av/SadTalker__WDA_KatieHill_000.mp4" \
    "$M/talking_av/videoretalking__1.mp4" "$M/talking_av/videoretalking__2.mp4" "$M/talking_av/videoretalking__3.mp4"
