"""Text from outside (file names, URLs, bundle metadata, server replies) made safe to show.

A name or a server message can hold escape sequences that clear a terminal and print a fake verdict,
or bidirectional overrides that reorder what is read. ``shown`` escapes every control and format
character the way Python writes them (``\\x1b``, ``\\u202e``); rich markup is escaped where text is
printed (``report.console``, the CLI's error lines).
"""

from __future__ import annotations

import unicodedata

_ESCAPED_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _escape(character: str) -> str:
    code = ord(character)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}"


def shown(text: object) -> str:
    """``text`` as a string with control, format and unassigned characters escaped (one visible line)."""
    value = text if isinstance(text, str) else str(text)
    if value.isprintable():
        return value
    return "".join(_escape(c) if unicodedata.category(c) in _ESCAPED_CATEGORIES or c in "\r\n\t" else c for c in value)
