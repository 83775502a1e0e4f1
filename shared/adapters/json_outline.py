"""The outline of a JSON document too large to hold, read chunk by chunk in bounded memory.

The HTTP feed reader (``shared/adapters/http_feed.py``) must learn a page's ``next`` cursor
without holding the one record the page carries, when that record is larger than it will read
into memory. A streaming parser cannot help: each string value it reports is built whole, and
the record may be one string. The outline keeps the document's top level as it is and, of each
container inside it, only its kind and how many elements it has (none, one, or more):
``{"items": [{...huge...}], "next": "c7"}`` outlines as ``{"items": [0], "next": "c7"}``. It
needs memory for the top level only, which is capped (``max_bytes``); what lies deeper is
scanned and dropped.

It is an outline, not a validator: a document that is not JSON gives an outline that is not
JSON either, or a wrong count of elements deeper down, never an error here. ``json.loads`` of
the outline is the caller's check.
"""

from __future__ import annotations

import json
import re
from typing import Any

# The rest of a string up to its closing quote, or up to the end of the chunk (then perhaps a lone
# backslash, the byte it escapes being in the next chunk).
_STRING_REST = re.compile(rb'[^"\\]*(?:\\.[^"\\]*)*')
_STRUCTURE = re.compile(rb'[{}\[\]",]')
_NOT_SPACE = re.compile(rb"[^ \t\r\n]")
# Deep inside, only brackets count: whole strings and everything else between are passed in one match
# (a string that does not end in this chunk stops the match at its opening quote).
_DEEP = re.compile(rb'(?:[^"{}\[\]]+|"[^"\\]*(?:\\.[^"\\]*)*")*')
_QUOTE, _BACKSLASH, _OPEN_ARRAY, _CLOSE_ARRAY = b'"\\[]'
_OPEN, _CLOSE = frozenset(b"{["), frozenset(b"}]")


class OutlineTooLarge(ValueError):
    """The document's top level alone is larger than the outline keeps."""


class JsonOutline:
    """Feed a JSON document's bytes in, in chunks of any size; ``value()`` is its outline."""

    def __init__(self, max_bytes: int = 64 * 1024) -> None:
        self.max_bytes = max_bytes
        self.bytes_read = 0
        self._kept = bytearray()  # the top level, and an outline of what is inside it
        self._depth = 0  # containers open where the next byte stands
        self._in_string = False
        self._escaped = False  # the byte before was a backslash inside a string
        self._elements = 0  # of the array open at depth 2: 0, 1, or 2 for two or more
        self._counting = False  # the container open at depth 2 is an array
        self._first_pending = False  # that array's first element has not begun yet

    def feed(self, chunk: bytes | bytearray) -> None:
        self.bytes_read += len(chunk)
        at, end = 0, len(chunk)
        while at < end:
            if self._escaped:  # the byte after a backslash: whatever it is, the string goes on
                self._keep(chunk[at : at + 1])
                self._escaped = False
                at += 1
            elif self._in_string:
                stop = _STRING_REST.match(chunk, at).end()  # type: ignore[union-attr]
                self._keep(chunk[at : stop + 1])
                if stop < end:  # the closing quote, or a backslash ending the chunk
                    self._escaped = chunk[stop] == _BACKSLASH
                    self._in_string = self._escaped
                at = stop + 1
            elif self._first_pending:
                found = _NOT_SPACE.search(chunk, at)
                if found is None:
                    return
                self._first_pending = False
                if chunk[found.start()] != _CLOSE_ARRAY:
                    self._elements = 1
                at = found.start()
            elif self._depth > 2:
                at = _DEEP.match(chunk, at).end()  # type: ignore[union-attr]  # it matches "" at least
                if at < end:
                    self._structure(chunk[at])
                    at += 1
            else:
                found = _STRUCTURE.search(chunk, at)
                stop = end if found is None else found.start()
                self._keep(chunk[at:stop])
                if found is None:
                    return
                self._structure(chunk[stop])
                at = stop + 1

    def _structure(self, byte: int) -> None:
        depth = self._depth
        if byte == _QUOTE:
            self._in_string = True
            self._keep(b'"')
        elif byte in _OPEN:
            if depth == 1:  # a container inside the top level: outlined
                self._counting = byte == _OPEN_ARRAY
                self._elements = 0
                self._first_pending = self._counting
                self._add(bytes([byte]))
            else:
                self._keep(bytes([byte]))
            self._depth += 1
        elif byte in _CLOSE:
            if depth == 2:
                if self._counting:
                    self._add(b",".join([b"0"] * self._elements))
                self._add(bytes([byte]))
            else:
                self._keep(bytes([byte]))
            self._depth = max(0, depth - 1)
        elif depth == 2 and self._counting:  # a comma between elements of the outlined array
            self._elements = 2
        else:
            self._keep(b",")

    def _keep(self, part: bytes | bytearray) -> None:
        """Bytes of the top level are kept; deeper ones are not."""
        if self._depth <= 1:
            self._add(part)

    def _add(self, part: bytes | bytearray) -> None:
        if len(self._kept) + len(part) > self.max_bytes:
            raise OutlineTooLarge(f"the top level of the document is larger than {self.max_bytes} bytes")
        self._kept += part

    def value(self) -> Any:
        """The outline as Python values (``json.loads``; ValueError when it is not JSON)."""
        return json.loads(self._kept)
