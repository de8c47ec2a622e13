"""Turning fuzzer bytes into choices, the same way with or without atheris.

atheris ships a FuzzedDataProvider, but the regression tests replay saved inputs without atheris; so the
structure-aware targets draw their choices from this reader instead. Running out of bytes gives zeros and
empty strings, never an error: every byte string is a valid input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

T = TypeVar("T")

# Characters that tend to break text handling, offered more often than their share of Unicode.
AWKWARD = (
    "\x00\n\r\t\x01\x08\x0c\x1f\x7f \u00a0\u2028\u200b\ufeff'\"\\/`’-.,:;[]{}=#$"
    "ßſıİŁłøǿæœÆℌⅫﬀ²١Ｋé\u0301\u0308ÇçÑ𝔸🙂"
)


class Draw:
    """Reads typed choices from the front of a byte string."""

    def __init__(self, data: bytes) -> None:
        self._data = data
        self._at = 0

    @property
    def remaining(self) -> int:
        return len(self._data) - self._at

    def take(self, n: int) -> bytes:
        """Up to n raw bytes."""
        chunk = self._data[self._at : self._at + n]
        self._at += len(chunk)
        return chunk

    def integer(self, low: int, high: int) -> int:
        """An integer in [low, high] (low when the bytes have run out)."""
        span = high - low
        if span <= 0:
            return low
        width = (span.bit_length() + 7) // 8
        return low + int.from_bytes(self.take(width).ljust(width, b"\0"), "big") % (span + 1)

    def boolean(self) -> bool:
        return self.integer(0, 1) == 1

    def choice(self, options: Sequence[T]) -> T:
        return options[self.integer(0, len(options) - 1)]

    def text(self, max_length: int = 40) -> str:
        """A string mixing ASCII, awkward characters and any Unicode scalar value (never a surrogate)."""
        out: list[str] = []
        for _ in range(self.integer(0, max_length)):
            kind = self.integer(0, 3)
            if kind == 0:
                out.append(chr(self.integer(0x20, 0x7E)))
            elif kind == 1:
                out.append(self.choice(AWKWARD))
            elif kind == 2:
                out.append(chr(self.integer(0, 0x2FF)))
            else:
                code = self.integer(0, 0x10FFFF)
                out.append(chr(code) if not 0xD800 <= code <= 0xDFFF else "\ufffd")
        return "".join(out)

    def rest_text(self) -> str:
        """The remaining bytes as text (invalid UTF-8 replaced)."""
        return self.take(self.remaining).decode("utf-8", "replace")
