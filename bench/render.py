"""Benchmark: render, encode and read the text of real recordings of 5 minutes, 1 hour and 8 hours.

The 5-minute recording is the first of bench/long_recording.py's continued
sessions of mixed work through real guacd (typing, scrolling, idle reading, a
window dragged around); the N-hour ones are those sessions one after another
(timestamps shifted). For each length, side by side:

- render (video + sprite + poster, as the worker makes them) in a child process
  pinned to one core: speed as a multiple of real time, peak RSS, MB per
  session-hour;
- PSNR of the video against the display model's exact frames, streamed: a second
  child draws the frames again without encoding and decodes the video in lockstep
  (every SAMPLE_EVERY-th frame compared), so nothing is held per frame;
- the text job (OCR with tesseract) in a child: CPU, peak RSS, engine calls.

    .venv/bin/python bench/render.py                       # 5 min, 1 h, 8 h
    .venv/bin/python bench/render.py --hours 1 --profiles vp9,av1 --no-text
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.long_recording import ensure_long, ensure_segments  # noqa: E402

SAMPLE_EVERY = 2  # compare every 2nd encoded frame

_PRELUDE = f"""
import json, os, resource, sys, time
os.sched_setaffinity(0, {{int(os.environ.get("BENCH_CORE", "0"))}})
sys.path.insert(0, {str(ROOT)!r})
from pathlib import Path
"""

_RENDER = _PRELUDE + """
from gui_recorder.render import render_recording
recording, out, profile = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
start_cpu, start = time.process_time(), time.perf_counter()
r = render_recording(recording, out, sprite_path=out.with_suffix(".jpg"), sprite_index_path=out.with_suffix(".json"),
                     poster_path=out.with_name("poster.jpg"), profile=profile)
print(json.dumps({"wall": time.perf_counter() - start, "cpu": time.process_time() - start_cpu,
                  "duration_ms": r.duration_ms, "frames": r.frames_encoded, "bytes": r.bytes_written,
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss,
                  "unknown": r.unknown, "malformed": r.malformed}))
"""

_PSNR = _PRELUDE + """
import av, numpy as np
from gui_recorder.render import video
recording, webm, profile, every = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])


class Compare(video._Encoder):
    # The frames the encoder was given (same selection, same pts), not encoded: decoded from the video instead.
    def __init__(self, path, width, height, profile, observe=None):
        self.width, self.height = width + (width & 1), height + (height & 1)
        self.frames, self.last_key, self.last_pts, self.observe = 0, None, -1, None
        self.container = av.open(str(webm))
        self.decoded = self.container.decode(video=0)
        self.current, self.scores, self.keyframe_gaps, self.worst = None, [], [], []
        self.since_key = self.max_since_key = 0
        Path(path).touch()  # render_recording publishes it at the end

    def add(self, image, pts):
        if pts <= self.last_pts:
            pts = self.last_pts + 1
        if image.shape[1] != self.width or image.shape[0] != self.height:
            image = video.fit_into(image, self.width, self.height)
        while self.current is None or self.current.pts < pts:
            self.current = next(self.decoded)
            if self.current.key_frame:
                self.last_key, self.since_key = self.current.pts, -1
            self.since_key += 1
            self.max_since_key = max(self.max_since_key, self.since_key)
        if self.frames % every == 0 and self.current.pts == pts:
            d = self.current.to_ndarray(format="bgr24")[: image.shape[0], : image.shape[1]]
            mse = np.mean((d.astype(np.float32) - image.astype(np.float32)) ** 2)
            self.scores.append(99.0 if mse == 0 else float(10 * np.log10(255 ** 2 / mse)))
            self.worst.append((self.scores[-1], pts, pts - self.last_key))
        self.keyframe_gaps.append(pts - self.last_key)
        self.frames += 1
        self.last_pts = pts

    def close(self):
        self.container.close()
        global RESULT
        RESULT = self

    def abandon(self):
        self.container.close()


video._Encoder = Compare
unused = Path(str(webm) + ".unused.webm")
video.render_recording(recording, unused, profile=profile)
unused.unlink()
s = np.array(RESULT.scores)
print(json.dumps({"mean": float(s.mean()), "min": float(s.min()), "p1": float(np.percentile(s, 1)),
                  "compared": len(s), "max_keyframe_gap_ms": int(max(RESULT.keyframe_gaps)),
                  "max_frames_after_key": RESULT.max_since_key,
                  "worst": sorted(RESULT.worst)[:3]}))
"""

_TEXT = _PRELUDE + """
from gui_recorder.render import screen_frames
from gui_recorder.text.engine import TesseractEngine
from gui_recorder.text.ocr import extract_text
recording = Path(sys.argv[1])
os.environ["OMP_THREAD_LIMIT"] = "1"  # tesseract, pinned with us to one core: one thread
start_cpu, start = time.process_time(), time.perf_counter()
# A generous timeout: on a shared machine one big batch can wait for the core longer than 30 s.
r = extract_text(recording, frames=screen_frames, engine=TesseractEngine(timeout_s=600))
child = resource.getrusage(resource.RUSAGE_CHILDREN)  # tesseract runs as a child process
print(json.dumps({"wall": time.perf_counter() - start, "cpu": time.process_time() - start_cpu,
                  "ocr_cpu": child.ru_utime + child.ru_stime, "calls": r.stats.calls,
                  "items": len(r.screen), "typed": len(r.typed),
                  "maxrss_kb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


def child(code: str, *args: object) -> dict:
    done = subprocess.run([sys.executable, "-c", code, *map(str, args)], capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"benchmark child failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def print_row(label: str, what: str, recording: Path, r: dict, q: dict | None) -> None:
    size = recording.stat().st_size / 1e6
    if what == "text":
        print(f"{label:>7} {'text':>9} {size:11.1f} {'':>11} {r['maxrss_kb'] / 1024:11.0f} {'':>9} {'':>9} "
              f"{'':>8} {'':>5} {'':>10}   python {r['cpu']:.0f} s CPU + tesseract {r['ocr_cpu']:.0f} s CPU, "
              f"{r['calls']} OCR calls, {r['items']} screen items, {r['typed']} typed lines", flush=True)
        return
    seconds = r["duration_ms"] / 1000
    hours = seconds / 3600
    psnr = (f"{q['mean']:9.1f} {q['min']:8.1f} {q['p1']:5.1f} {q['max_frames_after_key']:10d}" if q
            else f"{'':>9} {'':>8} {'':>5} {'':>10}")
    print(f"{label:>7} {what:>9} {size:11.1f} {seconds / r['cpu']:11.0f} {r['maxrss_kb'] / 1024:11.0f} "
          f"{r['bytes'] / 1e6 / hours:9.1f} {psnr}   {r['frames']} frames, {r['cpu']:.0f} s CPU, "
          f"{seconds / r['wall']:.0f}x wall", flush=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--hours", type=float, nargs="*", default=[1, 8], help="long recordings besides 5 minutes")
    ap.add_argument("--profiles", default="", help="encoder profiles to compare (default: the default one)")
    ap.add_argument("--no-text", action="store_true", help="skip the text job")
    ap.add_argument("--no-psnr", action="store_true", help="skip the PSNR pass")
    args = ap.parse_args()
    from gui_recorder.render.video import DEFAULT_PROFILE

    profiles = [p for p in args.profiles.split(",") if p] or [DEFAULT_PROFILE]
    recordings = [("5 min", ensure_segments()[0])] + [(f"{h:g} h", ensure_long(h)) for h in args.hours]
    print(f"{'length':>7} {'what':>9} {'protocol MB':>11} {'x real time':>11} {'peak RSS MB':>11} "
          f"{'MB/sess-h':>9} {'PSNR mean':>9} {'PSNR min':>8} {'p1':>5} {'frames/key':>10}   other", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        for label, recording in recordings:
            for profile in profiles:
                out = Path(tmp) / f"{profile}.webm"
                r = child(_RENDER, recording, out, profile)
                q = {} if args.no_psnr else child(_PSNR, recording, out, profile, SAMPLE_EVERY)
                print_row(label, profile, recording, r, q)
            if not args.no_text:
                print_row(label, "text", recording, child(_TEXT, recording), None)
    print("targets: peak RSS <= 250 MB at every length; <= 20 MB per session-hour; PSNR mean >= 41, min >= 38 dB; "
          "frames after a keyframe <= 50 (a seek decodes at most 5 s of video)")


if __name__ == "__main__":
    main()
