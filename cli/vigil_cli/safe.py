"""Hostile text on the operator's terminal: shown, never interpreted.

Everything the CLI prints that came from a monitored instance, a stored finding, an execution's
input or a bad input line is attacker-controlled (whoever owns an instance owns its agent). Two
things would interpret it: rich (markup such as ``[/]``, which crashes the renderer, or ``[link=..]``;
emoji codes) and the terminal itself (ANSI CSI/OSC sequences: clear screen, window title, OSC 8
hyperlinks; BEL, backspace and carriage return that overwrite what was printed; C1 controls that
some terminals take as CSI; bidi overrides that reorder what is shown). Every such value goes
through this module before it reaches a Console:

- ``visible(v)``: ``str(v)`` with every control character replaced by a visible escape
  (``\\x1b``, ``\\n``, ``\\u202e``...), printable text untouched (backslashes too: Linux command
  lines are full of them, and an escape sequence typed as text is as harmless as the escape shown);
- ``text(v, style)``: a rich ``Text`` of ``visible(v)`` (never parsed as markup): table cells;
- ``markup(v)``: ``visible(v)`` escaped for a markup string: ``err.print(f"[red]error:[/] {markup(exc)}")``.

JSON output needs none of this: ``json.dumps`` (ASCII by default) writes every control character
as ``\\uXXXX``. Consoles come from ``console()``, which turns off emoji codes (``:skull:``) that
``markup()`` does not escape.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.text import Text

# C0, DEL, C1; bidi embeddings/overrides/isolates and marks (reordering what is shown); line and
# paragraph separators; lone surrogates (json.loads makes one of "\ud800"; stdout cannot encode it).
_CONTROL = re.compile(
    "[\x00-\x1f\x7f-\x9f\u061c\u200e\u200f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]"
)
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape_one(m: re.Match[str]) -> str:
    c = m.group()
    if c in _NAMED:
        return _NAMED[c]
    code = ord(c)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def visible(value: object) -> str:
    """``str(value)`` with every control character shown as an escape, never sent as itself."""
    return _CONTROL.sub(_escape_one, value if isinstance(value, str) else str(value))


def text(value: object, style: str = "") -> Text:
    """A table cell or message part: the value's visible text, with no markup interpretation."""
    return Text(visible(value), style=style)


def markup(value: object) -> str:
    """The value's visible text, escaped for use inside a rich markup string."""
    return escape(visible(value))


def console(*, stderr: bool = False, **kwargs: Any) -> Console:
    """A Console for the CLI: emoji codes off (escaped markup still carries ``:name:``); piped
    stdout is not squeezed to 80 columns; stderr messages are never wrapped."""
    if stderr:
        kwargs.setdefault("soft_wrap", True)
    else:
        kwargs.setdefault("width", None if sys.stdout.isatty() else 160)
    return Console(stderr=stderr, emoji=False, **kwargs)
