"""One Guacamole instruction and its wire encoding."""

from __future__ import annotations


class Instruction(tuple):
    """An instruction: element 0 is the opcode, the rest are its arguments.

    A tuple of ``str`` so it is cheap to build, hash and compare; every element
    is kept as the exact text received (parse numbers where they are used).
    """

    __slots__ = ()

    def __new__(cls, opcode: str, *args: object) -> "Instruction":
        return tuple.__new__(cls, (opcode, *map(str, args)))

    @classmethod
    def from_elements(cls, elements: list[str] | tuple[str, ...]) -> "Instruction":
        return tuple.__new__(cls, elements)

    @property
    def opcode(self) -> str:
        return self[0]

    @property
    def args(self) -> tuple[str, ...]:
        return self[1:]

    def encode(self) -> str:
        return encode(self)

    def __repr__(self) -> str:
        shown = [a if len(a) <= 40 else a[:37] + "..." for a in self]
        return f"Instruction{tuple(shown)!r}"


def encode(elements) -> str:
    """Encode elements as ``LEN.VALUE,...;`` where LEN counts code points."""
    return ",".join([f"{len(e)}.{e}" for e in elements]) + ";"
