"""Benchmark: render + encode a 5-minute real recording of mixed work, on one core.

Prints: speed as a multiple of real time, MB per session-hour, peak memory
(RSS of the rendering process), and PSNR of the video against the exact frames
of the display model. The recording is made once by bench/make_recording.py
through real guacd (typing, scrolling, idle reading, a window dragged around).

    .venv/bin/python bench/render.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import av  # noqa: E402
import numpy as np  # noqa: E402

from bench.make_recording import ensure  # noqa: E402

SAMPLE_EVERY = 10  # compare every 10th encoded frame


def render_child(recording: Path, out: Path) -> dict:
    """Render in a child process pinned to one core, so time and memory are its own."""
    code = f"""
import json, os, resource, sys, time
os.sched_setaffinity(0, {{0}})
sys.path.insert(0, {str(ROOT)!r})
from pathlib import Path
from gui_recorder.render import render_recording
start_cpu, start = time.process_time(), time.perf_counter()
r = render_recording(Path({str(recording)!r}), Path({str(out)!r}))
print(json.dumps({{"wall": time.perf_counter() - start, "cpu": time.process_time() - start_cpu,
                  "duration_ms": r.duration_ms, "frames": r.frames_encoded, "bytes": r.bytes_written,
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "unknown": r.unknown, "malformed": r.malformed}}))
"""
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 99.0 if mse == 0 else float(10 * np.log10(255 ** 2 / mse))


def video_psnr(recording: Path, video: Path) -> tuple[float, float, int]:
    """Render again in this process, keeping every SAMPLE_EVERY-th frame handed to the
    encoder (the display model's exact frame, at the pts it was given), then decode
    the video and compare those frames."""
    from gui_recorder.render import render_recording, video as video_module

    exact: dict[int, np.ndarray] = {}
    original = video_module._Encoder.add

    def add(self, image, pts):
        original(self, image, pts)
        if (self.frames - 1) % SAMPLE_EVERY == 0:
            exact[self.last_pts] = image.copy()

    video_module._Encoder.add = add
    try:
        render_recording(recording, video)
    finally:
        video_module._Encoder.add = original
    scores = []
    with av.open(str(video)) as container:
        for frame in container.decode(video=0):
            ref = exact.get(frame.pts)
            if ref is not None:
                decoded = frame.to_ndarray(format="bgr24")
                scores.append(psnr(decoded[: ref.shape[0], : ref.shape[1]], ref))
    return float(np.mean(scores)), float(np.min(scores)), len(scores)


def main() -> None:
    recording = ensure(5)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "bench.webm"
        r = render_child(recording, out)
        mean_psnr, min_psnr, compared = video_psnr(recording, Path(tmp) / "again.webm")
    seconds = r["duration_ms"] / 1000
    hours = seconds / 3600
    print(f"recording: {recording} ({recording.stat().st_size / 1e6:.1f} MB of protocol, {seconds:.0f} s of session)")
    print(f"render+encode on one core: {r['cpu']:.1f} s CPU, {r['wall']:.1f} s wall -> "
          f"{seconds / r['cpu']:.0f}x real time (CPU), {seconds / r['wall']:.0f}x (wall)   [target >= 40x]")
    print(f"video: {r['frames']} frames encoded, {r['bytes'] / 1e6:.2f} MB -> "
          f"{r['bytes'] / 1e6 / hours:.1f} MB per session-hour   [target <= 30 MB]")
    print(f"peak memory of the render process: {r['maxrss_kb'] / 1024:.0f} MB")
    print(f"PSNR against the exact frames: mean {mean_psnr:.1f} dB, min {min_psnr:.1f} dB over {compared} frames"
          f"   [target >= 38 dB]")
    if r["unknown"] or r["malformed"]:
        print(f"skipped instructions: unknown {r['unknown']}, malformed {r['malformed']}")


if __name__ == "__main__":
    main()
