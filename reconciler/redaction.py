"""What a server says, made safe to print: one line, shortened, withheld whole when it repeats a secret."""

from __future__ import annotations

import html
import json
import re
from collections.abc import Iterable
from typing import Any
from urllib.parse import quote

from reconciler.text import shown

# A server text that repeats this many consecutive characters of a secret is withheld whole: servers
# echo what they were sent quoted, escaped or cut short, and no replacement can catch every such form.
ECHO_WINDOW = 8
# Shorter than this, a key or a display would match ordinary words; values are never this short.
MIN_KNOWN = 4
WITHHELD = "(withheld: it repeated part of a secret value, a display or the API key)"
# A masked secret looks like this whatever the server's exact masking rule; a server message has no
# business holding one, even of a secret this run has not listed yet.
_MASKED = re.compile(r"\*{3,}|•{3,}")


def echo_forms(secret: str) -> set[str]:
    """The ways a server may spell `secret` back: as sent, JSON- or repr-escaped, HTML- or URL-encoded."""
    return {
        secret,
        json.dumps(secret)[1:-1],
        json.dumps(secret, ensure_ascii=False)[1:-1],
        repr(secret)[1:-1],
        html.escape(secret),
        quote(secret, safe=""),
    }


def _add_windows(by_width: dict[int, set[str]], secret: str) -> None:
    for form in echo_forms(secret):
        width = min(len(form), ECHO_WINDOW)
        if width:
            windows = by_width.setdefault(width, set())
            windows.update(form[i : i + width] for i in range(len(form) - width + 1))


def _hits(text: str, by_width: dict[int, set[str]]) -> bool:
    return any(
        text[i : i + width] in windows
        for width, windows in by_width.items()
        for i in range(len(text) - width + 1)
    )


class Redactor:
    """The secrets of one run that no server text may carry into our output: the API key and every
    display seen, plus, per request, the values it sent."""

    def __init__(self, known: Iterable[str] = ()) -> None:
        self._known: set[str] = set()
        # Windows of every known secret, by width, built when a text is first checked: a listing of
        # thousands of displays costs nothing unless a server error needs checking.
        self._windows: dict[int, set[str]] = {}
        self._pending: list[str] = []
        for secret in known:
            self.add(secret)

    def add(self, secret: str | None) -> None:
        if secret is None or len(secret) < MIN_KNOWN or secret in self._known:
            return
        self._known.add(secret)
        self._pending.append(secret)

    def echoes(self, text: str, sent: tuple[str, ...] = (), shown: int | None = None) -> bool:
        """True when the first `shown` characters of `text` (all of it by default) overlap a run of
        ECHO_WINDOW characters (or all) of any form of a known secret or of a value sent."""
        if not text:
            return False
        # An echo reaching into the shown part has a whole window starting there.
        if shown is not None:
            text = text[: shown + ECHO_WINDOW]
        if _MASKED.search(text):
            return True
        for secret in self._pending:
            _add_windows(self._windows, secret)
        self._pending.clear()
        if _hits(text, self._windows):
            return True
        if not sent:
            return False
        extra: dict[int, set[str]] = {}
        for secret in sent:
            _add_windows(extra, secret)
        return _hits(text, extra)

    def line(self, text: str, limit: int, sent: tuple[str, ...] = ()) -> str:
        """`text` as one printable line of at most `limit` characters, or WITHHELD."""
        # Checked before shortening: a cut could split an echoed secret and hide it from the check;
        # and after escaping, which can spell out a secret that holds an escape sequence.
        line = shown(text, limit)
        if self.echoes(text, sent, limit) or self.echoes(line, sent):
            return WITHHELD
        return line

    def detail(self, body: Any, sent: tuple[str, ...] = ()) -> str:
        """The explanation in an error body ({"detail": str} or FastAPI's list), safe to print."""
        detail = body.get("detail") if isinstance(body, dict) else None
        if isinstance(detail, str):
            return self.line(detail, 300, sent)
        if not isinstance(detail, list):
            return ""
        parts = []
        for err in detail[:5]:
            if not isinstance(err, dict):
                continue
            loc = err.get("loc")
            field = ".".join(str(p) for p in loc[1:]) if isinstance(loc, list) and len(loc) > 1 else ""
            msg = str(err.get("msg", ""))
            field = self.line(field, 100, sent)
            if field == WITHHELD:
                field, msg = "", WITHHELD
            else:
                msg = self.line(msg, 200, sent)
            parts.append(f"{field}: {msg}" if field else msg)
        return "; ".join(parts)
