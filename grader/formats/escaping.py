"""Text that came from student code, made safe for people's terminals and files: control and bidi characters
and lone surrogates shown as escapes, XML and Markdown special characters escaped."""
from __future__ import annotations

import re

_LONE_SURROGATE = re.compile("[\ud800-\udfff]")
# Control characters (Unicode category Cc) but newline and tab, surrogates (Cs), bidi marks, embeddings, overrides
# and isolates, zero-width characters, line and paragraph separators, the BOM, and the noncharacters XML refuses.
_INVISIBLE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u061c\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff"
                        "\ud800-\udfff\ufffe\uffff]")


def _escape(match: re.Match) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def _printable(text: str) -> str:
    """Show control characters as escapes: an ESC from student output must not drive the reader's terminal,
    bidi overrides must not reorder what a grader reads, and a lone surrogate cannot be written as UTF-8."""
    return _INVISIBLE.sub(_escape, text)


def _xml_text(text: str) -> str:
    """XML 1.0 cannot hold most control characters, not even as references: shown as escapes, like the rest."""
    return _printable(text)


_MARKDOWN_SPECIAL = re.compile(r"([\\`*_\[\]<>|~$])")  # $ too: GitHub renders $...$ as math


def _md(text: str) -> str:
    """Student text as one literal table cell: no markup, no HTML, no line breaks that end the row."""
    text = _MARKDOWN_SPECIAL.sub(r"\\\1", _printable(text).replace("&", "&amp;"))
    return text.replace("\r\n", "\n").replace("\n", "<br>")
