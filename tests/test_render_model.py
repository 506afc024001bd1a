"""The display model against hand-made instruction streams: one behaviour per test."""

from __future__ import annotations

import base64
import struct
import zlib

import cv2
import numpy as np

from gui_recorder.protocol import Instruction
from gui_recorder.render import Display, apply

RED, GREEN, BLUE, WHITE, BLACK = [0, 0, 255], [0, 255, 0], [255, 0, 0], [255, 255, 255], [0, 0, 0]


def draw(display: Display, *instructions) -> Display:
    for ins in instructions:
        apply(display, Instruction(*ins))
    return display


def fill(layer, x, y, w, h, rgb, mask=0xE):
    return [("rect", layer, x, y, w, h), ("cfill", mask, layer, *rgb, 255)]


def png(image: np.ndarray) -> str:
    return base64.b64encode(cv2.imencode(".png", image)[1].tobytes()).decode()


def test_transfer_instruction_xors_a_buffer_onto_the_display():
    d = draw(Display(), ("size", 0, 8, 8), *fill(0, 0, 0, 8, 8, (255, 0, 0)), *fill(-1, 0, 0, 4, 4, (255, 255, 0)))
    assert d.layers[-1].width == 4 and d.layers[-1].height == 4, "a buffer grows to exactly what is drawn"
    d.take_dirty()
    draw(d, ("transfer", -1, 0, 0, 4, 4, 0x6, 0, 2, 2))  # XOR: red ^ yellow = green
    frame = d.frame()
    assert frame[3, 3].tolist() == GREEN and frame[0, 0].tolist() == RED and frame[6, 6].tolist() == RED
    assert d.take_dirty() == [(2, 2, 4, 4)]


def test_rect_paths_are_exact_and_transformed():
    d = draw(Display(), ("size", 0, 20, 20), ("transform", 0, 1, 0, 0, 1, 10, 5), *fill(0, 0, 0, 3, 2, (0, 0, 255)))
    frame = d.frame()
    painted = np.argwhere(np.all(frame == BLUE, axis=2))
    assert painted.min(axis=0).tolist() == [5, 10] and painted.max(axis=0).tolist() == [6, 12]
    draw(d, ("identity", 0), *fill(0, 0, 0, 1, 1, (0, 255, 0)))
    assert d.frame()[0, 0].tolist() == GREEN


def test_clip_limits_drawing_until_pop():
    d = draw(Display(), ("size", 0, 10, 10), ("push", 0), ("rect", 0, 2, 2, 3, 3), ("clip", 0),
             *fill(0, 0, 0, 10, 10, (255, 255, 255)))
    frame = d.frame()
    assert int(np.all(frame == WHITE, axis=2).sum()) == 9 and frame[2, 2].tolist() == WHITE
    draw(d, ("pop", 0), *fill(0, 8, 8, 2, 2, (255, 0, 0)))
    assert d.frame()[9, 9].tolist() == RED
    draw(d, ("rect", 0, 0, 0, 1, 1), ("clip", 0), ("reset", 0), *fill(0, 0, 9, 1, 1, (255, 0, 0)))
    assert d.frame()[9, 0].tolist() == RED, "reset drops the clip"


def test_arc_fill_and_stroke_are_approximately_right():
    d = draw(Display(), ("size", 0, 40, 40), ("arc", 0, 20, 20, 10, "0", f"{2 * np.pi:.5f}", 0),
             ("cfill", 14, 0, 0, 255, 0, 255))
    frame = d.frame()
    assert frame[20, 20].tolist() == GREEN and frame[11, 20].tolist() == GREEN and frame[12, 12].tolist() != GREEN
    assert abs(int(np.all(frame == GREEN, axis=2).sum()) - np.pi * 100) < 40
    draw(d, ("start", 0, 2, 2), ("line", 0, 2, 30), ("cstroke", 14, 0, "butt", "miter", 1, 255, 0, 0, 255))
    assert d.frame()[15, 2].tolist() == RED and d.frame()[15, 4].tolist() == BLACK


def test_layers_stack_by_z_nest_and_report_where_they_moved():
    d = draw(Display(), ("size", 0, 30, 30), ("size", 1, 5, 5), ("size", 2, 5, 5), ("size", 3, 2, 2),
             *fill(1, 0, 0, 5, 5, (255, 0, 0)), *fill(2, 0, 0, 5, 5, (0, 255, 0)), *fill(3, 0, 0, 2, 2, (0, 0, 255)),
             ("move", 1, 0, 10, 10, 5), ("move", 2, 0, 12, 12, 1), ("move", 3, 1, 1, 1, 0))
    frame = d.frame()
    assert frame[12, 12].tolist() == BLUE, "the child of layer 1 is drawn over its parent, at parent + offset"
    assert frame[14, 14].tolist() == RED, "layer 1 (z 5) is above layer 2 (z 1) although its index is lower"
    assert frame[16, 16].tolist() == GREEN
    d.take_dirty()
    draw(d, ("move", 1, 0, 20, 0, 5))
    assert sorted(d.take_dirty()) == [(10, 10, 5, 5), (20, 0, 5, 5)]
    draw(d, ("shade", 1, 128))
    assert 100 < d.frame()[4, 24][2] < 160 and d.frame()[4, 24][0] == 0
    draw(d, ("dispose", 1))
    assert d.frame()[2, 22].tolist() == BLACK and d.frame()[1, 21].tolist() == BLACK, "its child went with it"


def test_image_masks_rout_then_over_keep_translucency_right():
    d = draw(Display(), ("size", 0, 4, 4), *fill(0, 0, 0, 4, 4, (255, 255, 255)))
    tile = np.zeros((4, 4, 4), np.uint8)
    tile[..., 2], tile[..., 3] = 255, 128  # half-transparent red
    draw(d, ("img", 1, 0xE, 0, "image/png", 0, 0), ("blob", 1, png(tile)), ("end", 1))
    over = d.frame()[0, 0].tolist()
    assert over[2] == 255 and 120 < over[0] < 135
    draw(d, ("img", 2, 0x2, 0, "image/png", 0, 0), ("blob", 2, png(tile)), ("end", 2))
    assert d.layers[0].canvas[0, 0, 3] < 135, "ROUT cleared where the image is opaque"


def test_cursor_follows_the_mouse_and_marks_both_places_dirty():
    d = draw(Display(), ("size", 0, 50, 50), *fill(-1, 0, 0, 3, 3, (255, 255, 255)), ("cursor", 1, 1, -1, 0, 0, 3, 3),
             ("mouse", 10, 10))
    assert d.frame()[9, 9].tolist() == WHITE and d.frame(with_cursor=False)[9, 9].tolist() == BLACK
    d.take_dirty()
    draw(d, ("mouse", 30, 40, 0, 12345))
    assert sorted(d.take_dirty()) == [(9, 9, 3, 3), (29, 39, 3, 3)]
    assert d.frame()[39, 29].tolist() == WHITE


def test_dirty_rectangles_are_clipped_to_the_display_and_buffers_are_not_dirty():
    d = draw(Display(), ("size", 0, 10, 10), *fill(-5, 0, 0, 100, 100, (1, 2, 3)))
    assert d.take_dirty() == [(0, 0, 10, 10)]  # only the `size` of layer 0
    draw(d, ("copy", -5, 0, 0, 50, 50, 14, 0, 5, 5))
    assert d.take_dirty() == [(5, 5, 5, 5)]


def _png_header(width: int, height: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 6, 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr
            + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr)))


def test_hostile_input_is_counted_not_obeyed():
    d = draw(Display(), ("size", 0, 8, 8), ("size", -1, 8192, 8192), ("size", -2, 8192, 8192),
             ("img", 3, 14, 0, "image/png", 0, 0), ("blob", 3, base64.b64encode(_png_header(60000, 60000)).decode()),
             ("end", 3), ("img", 4, 14, 0, "audio/ogg", 0, 0), ("move", 0, 0, 1, 1, 1), ("transfer", 0, 0, 0, 1, 1, 99, 0, 0, 0),
             ("rect", 0, "a", 0, 1, 1), ("frobnicate", "x"), ("frobnicate",), ("size", 0, -3, 4))
    assert d.unknown == {"frobnicate": 2}
    assert d.malformed == {"size": 2, "end": 1, "img": 1, "move": 1, "transfer": 1, "rect": 1}
    assert d.width == 8 and d.pixels <= 96 << 20
    for _ in range(70000):
        apply(d, Instruction("line", "0", "1", "1"))
    assert d.malformed["line"] >= 1, "a path cannot grow without end"
