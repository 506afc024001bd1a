"""The Guacamole protocol: instructions, an incremental parser and an encoder.

Everything else in gui-recorder (gateway, recording, render, text) shares this
package; it has no dependencies beyond the standard library.
"""

from gui_recorder.errors import ProtocolError
from gui_recorder.protocol.instruction import Instruction, encode
from gui_recorder.protocol.parser import Limits, Parser, parse_all

__all__ = ["Instruction", "Limits", "Parser", "ProtocolError", "encode", "parse_all"]
