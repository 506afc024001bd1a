"""The video, sprite and poster of a recording, on a hand-made 60 s session with a long idle stretch."""

from __future__ import annotations

import base64
import functools
import io
import json

import av
import cv2
import numpy as np
import pytest

from gui_recorder.errors import RenderError
from gui_recorder.protocol import encode
from gui_recorder.render import probe_recording, render_recording
from gui_recorder.render.video import KEYFRAME_FRAMES

SESSION_MS = 60_000
IDLE = (20_000, 50_000)  # nothing changes in between, though guacd keeps sending `sync`


@functools.cache
def session() -> bytes:
    """A 640x480 screen where bars and noise tiles appear every 250 ms, except during the idle stretch."""
    rng = np.random.default_rng(7)
    out = [encode(("size", "0", "640", "480"))]
    for i, ts in enumerate(range(0, SESSION_MS + 1, 250)):
        if not IDLE[0] <= ts < IDLE[1]:
            tile = np.full((20, 64, 3), 255, np.uint8)  # a word of text, as a terminal tile
            cv2.putText(tile, f"{rng.integers(0, 99999):05d}", (2, 15), cv2.FONT_HERSHEY_PLAIN, 1, (0, 0, 0))
            tile = base64.b64encode(cv2.imencode(".png", tile)[1]).decode()
            out += [encode(("rect", "0", str(i % 640), str((i * 7) % 470), "1", "10")),
                    encode(("cfill", "14", "0", "255", str(i % 256), "0", "255")),
                    encode(("img", "3", "14", "0", "image/png", str((i * 37) % 600), str((i * 11) % 440))),
                    encode(("blob", "3", tile)), encode(("end", "3"))]
        out.append(encode(("sync", str(1_000_000 + ts))))
    return "".join(out).encode()


@pytest.fixture(scope="module")
def rendered(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("video")
    progress: list[float] = []
    result = render_recording(io.BytesIO(session()), tmp / "v.webm", sprite_path=tmp / "s.jpg",
                              sprite_index_path=tmp / "s.json", poster_path=tmp / "p.jpg", progress=progress.append)
    with av.open(str(tmp / "v.webm")) as container:
        stream = container.streams.video[0]
        ms = float(stream.time_base) * 1000
        packets = sorted((round(p.pts * ms), p.is_keyframe) for p in container.demux(stream) if p.pts is not None)
        duration_ms = container.duration / 1000 if container.duration else None
        size = (stream.codec_context.width, stream.codec_context.height)
    return tmp, result, packets, duration_ms, size, progress


def test_duration_equals_the_session_and_idle_costs_no_frames(rendered):
    _, result, packets, duration_ms, size, _ = rendered
    assert result.duration_ms == SESSION_MS == probe_recording(session())[0]
    assert (result.width, result.height) == size == (640, 480)
    assert packets[-1][0] == SESSION_MS, "a last frame at the final sync"
    assert duration_ms is not None and abs(duration_ms - SESSION_MS) <= 100
    in_idle = [t for t, _ in packets if IDLE[0] + 200 <= t < IDLE[1]]
    assert in_idle == [], "no frame is encoded while nothing changes"
    assert result.frames_encoded == len(packets) < SESSION_MS / 100


def test_a_seek_decodes_at_most_5_s_of_frames(rendered):
    """Keyframes come after 5 s worth of frames (50 at the 10 a second cap), not of wall time: an idle
    stretch needs none, since a seek through it decodes nothing."""
    _, _, packets, _, _, _ = rendered
    assert packets[0][1], "the first frame is a keyframe"
    since_key = longest = 0
    for t, key in packets:
        since_key = 0 if key else since_key + 1
        longest = max(longest, since_key)
    assert longest == KEYFRAME_FRAMES == 50, "frames after a keyframe: a seek decodes at most these"
    frames_in_session = SESSION_MS // 250 - (IDLE[1] - IDLE[0]) // 250
    assert sum(key for _, key in packets) <= -(-frames_in_session // (KEYFRAME_FRAMES + 1)) + 1
    gaps = [b - a for (a, _), (b, _) in zip(packets, packets[1:])]
    assert max(gaps) >= IDLE[1] - IDLE[0] - 250, "the idle stretch is one gap, with no keyframe forced in it"


def test_sprite_index_poster_and_progress(rendered):
    tmp, result, _, _, _, progress = rendered
    index = json.loads((tmp / "s.json").read_text())
    sprite = cv2.imread(str(tmp / "s.jpg"))
    times = [item["t_ms"] for item in index["items"]]
    assert times[:3] == [0, 5000, 10000] and times[-1] == SESSION_MS and len(times) == SESSION_MS // 5000 + 1
    for item in index["items"]:
        assert item["w"] == 160 and item["x"] + item["w"] <= sprite.shape[1] and item["y"] + item["h"] <= sprite.shape[0]
    poster = cv2.imread(str(tmp / "p.jpg"))
    assert poster.shape == (480, 640, 3) and (poster[..., 2] > 200).sum() > 100  # the red bars
    assert progress == sorted(progress) and progress[-1] == 1.0 and len(progress) >= 4
    assert not list(tmp.glob(".*.part"))


def test_scaled_output(tmp_path):
    cut = session()[: len(session()) // 2]  # ends mid-instruction, as when guacd is killed
    result = render_recording(cut, tmp_path / "small.webm", size=(320, 240))
    assert (result.width, result.height) == (320, 240) and result.truncated
    assert 0 < result.duration_ms < SESSION_MS
    with av.open(str(tmp_path / "small.webm")) as container:
        frame = next(container.decode(video=0))
        assert (frame.width, frame.height) == (320, 240)


def test_nothing_to_render_is_a_typed_error_and_leaves_nothing(tmp_path):
    with pytest.raises(RenderError):
        render_recording(b"4.sync,1.5;", tmp_path / "none.webm")
    with pytest.raises(RenderError):
        render_recording(session(), tmp_path / "bad.webm", size=(0, 5))
    assert list(tmp_path.iterdir()) == []


def test_video_frames_match_the_display_model(tmp_path):
    """The decoded last frame is close to the exact one (PSNR), and colours are not swapped."""
    from gui_recorder.render import Display, StreamReport, iter_frames, read_instructions

    display = Display()
    for _ in iter_frames(read_instructions(session(), StreamReport()), display):
        pass
    render_recording(session(), tmp_path / "v.webm")
    with av.open(str(tmp_path / "v.webm")) as container:
        last = list(container.decode(video=0))[-1].to_ndarray(format="bgr24")
    exact = display.frame()
    mse = np.mean((last.astype(float) - exact.astype(float)) ** 2)
    assert 10 * np.log10(255 ** 2 / max(mse, 1e-9)) >= 30


def test_display_resized_mid_session_is_letterboxed(tmp_path):
    stream = "".join(encode(i) for i in [
        ("size", "0", "101", "75"), ("rect", "0", "0", "0", "101", "75"), ("cfill", "14", "0", "0", "0", "255", "255"),
        ("sync", "0"), ("size", "0", "202", "150"), ("rect", "0", "0", "0", "202", "150"),
        ("cfill", "14", "0", "255", "0", "0", "255"), ("sync", "1000"), ("size", "0", "50", "20"), ("sync", "2000"),
        ("size", "0", "20", "50"), ("sync", "5000"), ("sync", "12000")])
    result = render_recording(stream.encode(), tmp_path / "r.webm", sprite_path=tmp_path / "s.jpg")
    assert result.duration_ms == 12000 and not result.malformed
    assert cv2.imread(str(tmp_path / "s.jpg")).shape[0] == 119, "one row of equal cells, whatever the display did"
    with av.open(str(tmp_path / "r.webm")) as container:
        frames = [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]
    assert all(f.shape == (76, 102, 3) for f in frames), "odd sizes padded to even, then kept"
    assert frames[0][30, 50, 0] > 200 and frames[1][30, 40, 2] > 200, "blue, then the larger red screen scaled down"


def test_a_very_long_session_spaces_its_thumbnails_out(tmp_path):
    hours = 3
    steps = [encode(("size", "0", "64", "48"))]
    for i, ts in enumerate(range(0, hours * 3600_000 + 1, 5000)):
        steps += [encode(("rect", "0", str(i % 64), "0", "1", "48")), encode(("cfill", "14", "0", "255", "255", "255", "255")),
                  encode(("sync", str(ts)))]
    render_recording("".join(steps).encode(), tmp_path / "long.webm", sprite_path=tmp_path / "s.jpg",
                     sprite_index_path=tmp_path / "s.json")
    index = json.loads((tmp_path / "s.json").read_text())
    times = [item["t_ms"] for item in index["items"]]
    # 2,160 slots at 5 s, 1,080 at 10 s: both over MAX_THUMBS (1,000), so 20 s.
    assert index["interval_ms"] == 20000 and len(times) <= 1000
    assert times == sorted(times) and times[1] - times[0] == 20000 and times[-1] == hours * 3600_000
