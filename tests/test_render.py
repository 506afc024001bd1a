"""Render: the display model against hand-made streams, and against the real X screen."""

from __future__ import annotations

import asyncio
import base64
import subprocess

import av
import cv2
import numpy as np
import pytest

from gui_recorder.protocol import Instruction, encode
from gui_recorder.render import Display, apply, iter_frames, probe_recording, render_recording
from gui_recorder.render.layers import transfer
from gui_recorder.render.video import KEYFRAME_FRAMES
from support.sessions import open_recorded, wait_written


def png(image: np.ndarray) -> str:
    return base64.b64encode(cv2.imencode(".png", image)[1].tobytes()).decode()


def draw(display: Display, *instructions) -> None:
    for ins in instructions:
        apply(display, Instruction(*ins))


def test_rect_cfill_copy_overlap_and_dirty_rects():
    d = Display()
    draw(d, ("size", 0, 40, 20), ("rect", 0, 0, 0, 10, 10), ("cfill", 14, 0, 255, 0, 0, 255))
    assert d.frame()[5, 5].tolist() == [0, 0, 255] and d.frame()[5, 15].tolist() == [0, 0, 0]
    d.take_dirty()
    # Copy onto itself, overlapping: must read the source before writing.
    draw(d, ("copy", 0, 0, 0, 20, 10, 14, 0, 5, 0))
    frame = d.frame()
    assert frame[5, 5:15].tolist() == [[0, 0, 255]] * 10 and frame[5, 15:25].tolist() == [[0, 0, 0]] * 10
    assert d.take_dirty() == [(5, 0, 20, 10)]


def test_image_streams_layers_and_opacity():
    d = Display()
    tile = np.full((4, 4, 3), (255, 0, 0), np.uint8)  # blue in BGR
    draw(d, ("size", 0, 16, 16), ("size", 1, 4, 4), ("img", 1, 14, 1, "image/png", 0, 0),
         ("blob", 1, png(tile)), ("end", 1), ("move", 1, 0, 8, 8, 1))
    frame = d.frame()
    assert frame[9, 9].tolist() == [255, 0, 0] and frame[2, 2].tolist() == [0, 0, 0]
    draw(d, ("shade", 1, 0))
    assert d.frame()[9, 9].tolist() == [0, 0, 0]
    draw(d, ("shade", 1, 255), ("dispose", 1))
    assert d.frame()[9, 9].tolist() == [0, 0, 0] and 1 not in d.layers


@pytest.mark.parametrize("function,expected", [(0x3, 0b1100), (0x5, 0b1010), (0x1, 0b1000), (0x6, 0b0110),
                                               (0xC, 0b0011), (0x0, 0), (0xF, 0b1111)])
def test_transfer_binary_functions(function, expected):
    src = np.zeros((1, 1, 4), np.uint8)
    dst = np.zeros((1, 1, 4), np.uint8)
    src[0, 0, :3], dst[0, 0, :3] = 0b1100, 0b1010
    assert int(transfer(src, dst, function)[0, 0, 0]) & 0xF == expected


def test_unknown_and_malformed_are_counted_not_fatal():
    d = Display()
    draw(d, ("size", 0, 8, 8), ("frobnicate", 1), ("copy", "x"), ("img", 2, 14, 0, "image/png", 0, 0),
         ("blob", 2, "!!!not base64"), ("end", 2), ("size", 0, 99999, 5))
    assert d.unknown == {"frobnicate": 1}
    assert d.malformed["copy"] == 1 and d.malformed["size"] == 1
    assert d.width == 8


def test_truncated_recording_renders_what_is_complete(tmp_path):
    stream = "".join(encode(i) for i in [("size", "0", "32", "16"), ("rect", "0", "0", "0", "8", "8"),
                                         ("cfill", "14", "0", "0", "255", "0", "255"), ("sync", "1000"),
                                         ("rect", "0", "8", "0", "8", "8"), ("sync", "2500")])
    cut = stream + "5.cfill,2.14,1."  # guacd died mid-instruction
    result = render_recording(cut.encode(), tmp_path / "t.webm")
    assert result.truncated and result.duration_ms == 1500 and result.frames_encoded >= 1
    assert probe_recording(stream.encode()) == (1500, 32, 16)


# -- against the real screen -----------------------------------------------------

def screenshot(display: str) -> np.ndarray:
    png_bytes = subprocess.run(["import", "-display", display, "-window", "root", "png:-"],
                               capture_output=True, check=True).stdout
    return cv2.imdecode(np.frombuffer(png_bytes, np.uint8), cv2.IMREAD_COLOR)


async def record_and_snap(stack, tmp_path, protocol: str, text: str) -> tuple:
    client = await open_recorded(stack, tmp_path, protocol, protocol)
    try:
        await asyncio.sleep(1.5)
        await client.type(text)
        await asyncio.sleep(2.5)  # let the screen settle, then look at it
        shot = await asyncio.to_thread(screenshot, getattr(stack, protocol).display)
        await asyncio.sleep(1.0)
    finally:
        await client.close()
    return await wait_written(tmp_path / protocol), shot


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return float("inf") if mse == 0 else 10 * np.log10(255 ** 2 / mse)


@pytest.mark.parametrize("protocol", ["vnc", "rdp"])
async def test_last_frame_equals_the_screen_and_video_lasts_the_session(stack, tmp_path, artifacts, protocol):
    recording, shot = await record_and_snap(stack, tmp_path, protocol, f"echo render-{protocol}-check\nls /\n")
    display = Display()
    last = None
    for _, frame, _ in iter_frames(_instructions(recording), display):
        last = frame
    # Real guacd output: every instruction is understood and well-formed.
    assert not display.malformed and not display.unknown, (dict(display.malformed), dict(display.unknown))
    exact = display.frame(with_cursor=False)
    cv2.imwrite(str(artifacts / f"render-{protocol}-last.png"), exact)
    cv2.imwrite(str(artifacts / f"render-{protocol}-screen.png"), shot)
    assert exact.shape == shot.shape
    equal = np.mean(np.all(exact == shot, axis=2))
    assert psnr(exact, shot) >= 40 or equal >= 0.99, (psnr(exact, shot), equal)
    assert last is not None

    result = render_recording(recording, tmp_path / "out.webm", sprite_path=tmp_path / "s.jpg",
                              sprite_index_path=tmp_path / "s.json", poster_path=tmp_path / "p.jpg")
    duration, _, _ = probe_recording(recording)
    assert result.duration_ms == duration
    with av.open(str(tmp_path / "out.webm")) as container:
        stream = container.streams.video[0]
        packets = [(p.pts, p.is_keyframe) for p in container.demux(stream) if p.pts is not None]
        time_base_ms = float(stream.time_base) * 1000
    frame_ms = 40
    assert abs(max(p for p, _ in packets) * time_base_ms - duration) <= frame_ms
    # Seeking decodes from the keyframe before the target: never more than 5 s worth of frames.
    since_key = None
    for pts, key in sorted(packets):
        since_key = 0 if key else since_key + 1
        assert since_key <= KEYFRAME_FRAMES
    assert (tmp_path / "p.jpg").stat().st_size > 0 and (tmp_path / "s.json").exists()
    assert not list(tmp_path.glob(".*.part")), "no temporary output left behind"


def _instructions(path):
    from gui_recorder.render import StreamReport, read_instructions

    return read_instructions(path, StreamReport())
