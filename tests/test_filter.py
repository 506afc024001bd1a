"""The client filter, opcode by opcode: every shape a display client sends, and every one it does not.

Pure unit tests: ``ClientFilter.check`` decides on one instruction at a time.
The shapes are those guacamole-common-js 1.3-1.6 sends (Client.js): e.g.
``put`` is ``put,object,stream,mimetype,name``, four arguments.
"""

from __future__ import annotations

import pytest

from gui_recorder.gateway.filter import MAX_OPEN_STREAMS, ClientFilter, ClientPolicy, Verdict, WatcherFilter
from gui_recorder.protocol import Instruction

FORWARD, REFUSE, VIOLATION = Verdict.FORWARD, Verdict.REFUSE, Verdict.VIOLATION
EVERYTHING = ClientPolicy(allow_clipboard=True, allow_file_transfer=True)
NOTHING = ClientPolicy(allow_clipboard=False, allow_file_transfer=False)


def ins(*elements: object) -> Instruction:
    return Instruction(*elements)


def verdict(f: ClientFilter | WatcherFilter, *elements: object) -> Verdict:
    return f.check(ins(*elements))[0]


# Each input opcode: the shapes a browser sends, then a shape with one argument too many and too few.
INPUT_SHAPES = {
    "key": [("65", "1")],
    "mouse": [("10", "20", "1")],
    "size": [("1024", "768"), ("1024", "768", "96")],
    "sync": [("12345",), ("12345", "1")],
    "ack": [("3", "OK", "0")],
    "nop": [()],
    "disconnect": [()],
    "touch": [("0", "10", "20", "5", "5", "0", "1")],
}


@pytest.mark.parametrize("opcode,args", [(op, a) for op, shapes in INPUT_SHAPES.items() for a in shapes])
@pytest.mark.parametrize("policy", [EVERYTHING, NOTHING])
def test_input_is_forwarded_whatever_the_policy(opcode, args, policy):
    assert ClientFilter(policy).check(ins(opcode, *args)) == (FORWARD, "")


@pytest.mark.parametrize("opcode", INPUT_SHAPES)
def test_input_with_a_wrong_argument_count_is_a_violation(opcode):
    counts = {len(a) for a in INPUT_SHAPES[opcode]}
    for argc in ({max(counts) + 1, min(counts) - 1} - {-1}):
        v, why = ClientFilter(EVERYTHING).check(ins(opcode, *["1"] * argc))
        assert v is VIOLATION and why == f"'{opcode}' with {argc} arguments"


# -- streams the browser opens -----------------------------------------------------------------

OPENS = {  # opcode -> (arguments, the stream index among them, the policy flag it needs)
    "clipboard": (("7", "text/plain"), "7", "allow_clipboard"),
    "file": (("8", "text/plain", "notes.txt"), "8", "allow_file_transfer"),
    "put": (("2", "9", "application/octet-stream", "/upload/notes.txt"), "9", "allow_file_transfer"),
}


@pytest.mark.parametrize("opcode", OPENS)
def test_an_allowed_stream_opens_carries_data_and_closes(opcode):
    args, stream, _ = OPENS[opcode]
    f = ClientFilter(EVERYTHING)
    assert f.check(ins(opcode, *args)) == (FORWARD, "")
    assert f.open_streams == {stream: "clipboard" if opcode == "clipboard" else "file"}
    assert verdict(f, "blob", stream, "aGVsbG8=") is FORWARD
    assert verdict(f, "end", stream) is FORWARD
    assert f.open_streams == {}
    # Closed: its late data is refused (not forwarded), the session goes on.
    assert f.check(ins("blob", stream, "aGVsbG8=")) == (REFUSE, f"stream {stream} is not open")


def test_put_is_the_real_four_argument_upload():
    """guacamole-common-js: `tunnel.sendMessage("put", index, stream.index, mimetype, name)`."""
    f = ClientFilter(EVERYTHING)
    assert f.check(ins("put", "2", "9", "text/plain", "a.txt")) == (FORWARD, "")
    assert "9" in f.open_streams and "2" not in f.open_streams  # the stream, not the object
    assert f.check(ins("put", "2", "10", "text/plain", "a.txt", "extra")) == (VIOLATION, "'put' with 5 arguments")
    assert f.check(ins("put", "10", "text/plain", "a.txt")) == (VIOLATION, "'put' with 3 arguments")


@pytest.mark.parametrize("opcode", OPENS)
def test_a_stream_the_policy_forbids_is_refused_and_stays_closed(opcode):
    args, stream, flag = OPENS[opcode]
    policy = ClientPolicy(**{"allow_clipboard": True, "allow_file_transfer": True, flag: False})
    f = ClientFilter(policy)
    v, why = f.check(ins(opcode, *args))
    assert v is REFUSE and "not allowed on this connection" in why
    assert f.open_streams == {}
    assert verdict(f, "blob", stream, "eA==") is REFUSE  # its data never reaches guacd
    assert verdict(f, "end", stream) is REFUSE


@pytest.mark.parametrize("opcode", OPENS)
def test_a_stream_open_with_a_wrong_argument_count_is_a_violation(opcode):
    args, _, _ = OPENS[opcode]
    for wrong in (args[:-1], (*args, "x")):
        assert ClientFilter(EVERYTHING).check(ins(opcode, *wrong)) == (
            VIOLATION, f"'{opcode}' with {len(wrong)} arguments")


def test_stream_data_with_a_wrong_argument_count_is_a_violation():
    f = ClientFilter(EVERYTHING)
    f.check(ins("clipboard", "1", "text/plain"))
    assert f.check(ins("blob", "1")) == (VIOLATION, "'blob' with 1 arguments")
    assert f.check(ins("blob", "1", "eA==", "more")) == (VIOLATION, "'blob' with 3 arguments")
    assert f.check(ins("end")) == (VIOLATION, "'end' with 0 arguments")
    assert f.check(ins("end", "1", "2")) == (VIOLATION, "'end' with 2 arguments")
    assert f.open_streams == {"1": "clipboard"}, "a malformed end closes nothing"


def test_too_many_open_streams_is_a_violation():
    f = ClientFilter(EVERYTHING)
    for i in range(MAX_OPEN_STREAMS):
        assert verdict(f, "clipboard", str(i), "text/plain") is FORWARD
    assert f.check(ins("clipboard", "9999", "text/plain")) == (VIOLATION, "too many open streams")
    assert verdict(f, "end", "0") is FORWARD
    assert verdict(f, "file", "9999", "text/plain", "x") is FORWARD, "closing one frees a slot"


# -- downloads ----------------------------------------------------------------------------------

def test_get_is_a_download_request_only_when_file_transfer_is_allowed():
    assert ClientFilter(EVERYTHING).check(ins("get", "2", "/notes.txt")) == (FORWARD, "")
    v, why = ClientFilter(NOTHING).check(ins("get", "2", "/notes.txt"))
    assert v is REFUSE and "file transfer is not allowed" in why
    assert ClientFilter(EVERYTHING).check(ins("get", "2")) == (VIOLATION, "'get' with 1 arguments")
    assert ClientFilter(EVERYTHING).check(ins("get", "2", "/a", "/b")) == (VIOLATION, "'get' with 3 arguments")


# -- what no display client sends ------------------------------------------------------------------

@pytest.mark.parametrize("elements", [
    ("select", "rdp"), ("connect", "VERSION_1_3_0", "host", "5900"), ("argv", "1", "text/plain", "password"),
    ("audio", "1", "audio/L16"), ("video", "1", "video/webm"), ("image", "image/png"), ("timezone", "UTC"),
    ("name", "x"), ("args", "VERSION_1_3_0"), ("ready", "$x"), ("error", "m", "512"), ("img", "1", "14", "0",
    "image/png", "0", "0"), ("required", "password"), ("nest", "0", "x"), ("no-such-opcode",), ("KEY", "65", "1"),
])
def test_everything_else_is_a_violation(elements):
    v, why = ClientFilter(EVERYTHING).check(ins(*elements))
    assert v is VIOLATION and why == f"'{elements[0]}' is not something a display client sends"


# -- a live watcher ---------------------------------------------------------------------------------

@pytest.mark.parametrize("elements", [("sync", "1"), ("sync", "1", "2"), ("nop",), ("ack", "1", "OK", "0")])
def test_a_watcher_may_acknowledge(elements):
    assert WatcherFilter().check(ins(*elements)) == (FORWARD, "")


@pytest.mark.parametrize("elements", [("key", "65", "1"), ("mouse", "1", "1", "1"), ("clipboard", "1", "text/plain"),
                                      ("size", "800", "600"), ("select", "rdp")])
def test_a_watcher_cannot_give_input(elements):
    v, why = WatcherFilter().check(ins(*elements))
    assert v is REFUSE and why == f"a watcher cannot send '{elements[0]}'"


@pytest.mark.parametrize("elements", [("sync",), ("nop", "x"), ("ack", "1", "OK")])
def test_a_watcher_acknowledgement_of_the_wrong_shape_is_a_violation(elements):
    assert WatcherFilter().check(ins(*elements))[0] is VIOLATION
