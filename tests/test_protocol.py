"""The Guacamole protocol codec: round trips under arbitrary chunking, limits, garbage."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gui_recorder.errors import ProtocolError
from gui_recorder.protocol import Instruction, Limits, Parser, encode, parse_all

element = st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=40)
instruction = st.lists(element, min_size=1, max_size=8).map(Instruction.from_elements)


def feed_in_chunks(data: bytes, cuts: list[int]) -> list[Instruction]:
    parser = Parser()
    out: list[Instruction] = []
    start = 0
    for cut in sorted(set(c % (len(data) + 1) for c in cuts)) + [len(data)]:
        out += parser.feed(data[start:cut])
        start = cut
    parser.close()
    return out


@given(st.lists(instruction, max_size=20), st.lists(st.integers(min_value=0), max_size=30))
def test_round_trip_under_any_chunking(instructions, cuts):
    data = "".join(encode(i) for i in instructions).encode()
    assert feed_in_chunks(data, cuts) == instructions


@given(st.lists(instruction, max_size=20), st.lists(st.integers(min_value=0), max_size=30))
def test_wire_text_is_exactly_what_was_received(instructions, cuts):
    # The relay forwards and tees ``wire``: it must be the input, whole instructions only.
    data = "".join(encode(i) for i in instructions).encode()
    parser = Parser(keep_wire=True)
    wires, start = [], 0
    for cut in sorted(set(c % (len(data) + 1) for c in cuts)) + [len(data)]:
        completed = parser.feed(data[start:cut])
        assert (parser.wire == "") == (not completed)
        assert parse_all(parser.wire.encode()) == completed
        wires.append(parser.wire)
        start = cut
    assert "".join(wires).encode() == data


@given(st.binary(max_size=300))
@settings(max_examples=500)
def test_random_bytes_raise_only_protocol_error(data):
    try:
        parse_all(data)
    except ProtocolError as exc:
        assert exc.offset is not None and exc.offset >= 0


def test_lengths_count_code_points_not_bytes():
    # "é" is 2 bytes, "😀" is 4 bytes: lengths are 1 each.
    data = "5.clipb,1.é,1.😀;".encode()
    assert parse_all(data) == [("clipb", "é", "😀")]
    assert encode(["clipb", "é", "😀"]) == "5.clipb,1.é,1.😀;"


def test_multibyte_character_split_across_feeds():
    data = "3.key,2.ü€;".encode()
    parser = Parser()
    out = []
    for i in range(len(data)):
        out += parser.feed(data[i : i + 1])
    assert out == [("key", "ü€")]


def test_values_may_contain_delimiters_and_be_empty():
    assert parse_all(b"0.,4.a,b;,3.x.y;") == [("", "a,b;", "x.y")]


def test_element_limit_names_offset():
    parser = Parser(Limits(max_element_length=10))
    with pytest.raises(ProtocolError, match="exceeds the limit of 10") as info:
        parser.feed(b"4.sync,3.123;4.blob,11.")
    assert info.value.offset == 20


def test_element_count_limit():
    data = encode(["x"] * 300).encode()
    with pytest.raises(ProtocolError, match="more than 256 elements"):
        parse_all(data)


def test_instruction_length_limit_fails_before_buffering_everything():
    parser = Parser(Limits(max_element_length=100, max_instruction_length=150))
    parser.feed(b"3.img," + b"90." + b"a" * 90 + b",")
    with pytest.raises(ProtocolError, match="instruction exceeds"):
        parser.feed(b"90.")


@pytest.mark.parametrize(
    "data, message",
    [
        (b"4.sync;x", "not a decimal"),
        (b"4.sync,3.123x", "expected ',' or ';'"),
        (b"12345678901.", "too many digits"),
        (b"\xff\xfe", "invalid UTF-8"),
        (b"-1.a;", "not a decimal"),
    ],
)
def test_malformed_input_is_a_clear_error(data, message):
    with pytest.raises(ProtocolError, match=message):
        Parser().feed(data)


def test_truncated_stream_is_reported_on_close():
    parser = Parser()
    assert parser.feed(b"4.sync,3.12") == []
    with pytest.raises(ProtocolError, match="ends inside an instruction"):
        parser.close()


def test_parser_stays_failed_after_an_error():
    parser = Parser()
    with pytest.raises(ProtocolError):
        parser.feed(b"x;")
    with pytest.raises(ProtocolError):
        parser.feed(b"4.sync,1.1;")
