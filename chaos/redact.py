"""No secret reaches output, logs or artefacts: one redactor for every place the suite writes text.

Secrets are known values (the environment's random Postgres password, the password of an external
target's DSN, anything a caller registers) and shapes (the password of a URL's userinfo, ``password=...``
in a libpq DSN or an environment listing, ``PGPASSWORD=...``, bearer tokens). :func:`redact` replaces them
with ``***``; :func:`redact_doc` walks a JSON document; :func:`install_log_redaction` makes every log
record pass through it. The writers call it at their boundary: results.json, the HTML page and the
summaries (``chaos.report``), the game-day journal and its printed output, collected container logs.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Mapping
from typing import Any

MASK = "***"
_SECRETS: set[str] = set()
_LOCK = threading.Lock()
_PATTERNS = [
    (re.compile(r"(?P<k>\b[a-z][a-z0-9+.-]*://[^:/@\s'\"]+:)(?P<v>[^@\s'\"]+)(?=@)", re.I), r"\g<k>" + MASK),
    (re.compile(r"(?P<k>\b(?:password|passwd|pgpassword|pg_password|postgres_password|secret|token|api_key)"
                r"\s*[=:]\s*['\"]?)(?P<v>[^\s'\"&,;]+)", re.I), r"\g<k>" + MASK),
    (re.compile(r"(?P<k>\bBearer\s+)(?P<v>[A-Za-z0-9._~+/=-]+)", re.I), r"\g<k>" + MASK),
]
MIN_SECRET_LEN = 4  # shorter registered values would mask ordinary words


def register(*values: str | None) -> None:
    """Known secret values: every later :func:`redact` masks them wherever they appear."""
    with _LOCK:
        _SECRETS.update(v for v in values if v and len(v) >= MIN_SECRET_LEN)


def redact(text: str) -> str:
    """``text`` with every known secret and every secret-shaped value masked."""
    if not text:
        return text
    with _LOCK:
        known = sorted(_SECRETS, key=len, reverse=True)
    for s in known:
        if s in text:
            text = text.replace(s, MASK)
    for pattern, repl in _PATTERNS:
        text = pattern.sub(repl, text)
    return text


def redact_bytes(data: bytes) -> bytes:
    return redact(data.decode(errors="replace")).encode()


def redact_doc(doc: Any) -> Any:
    """A copy of a JSON-like document with every string redacted (keys too)."""
    if isinstance(doc, str):
        return redact(doc)
    if isinstance(doc, Mapping):
        return {redact(str(k)) if isinstance(k, str) else k: redact_doc(v) for k, v in doc.items()}
    if isinstance(doc, list | tuple):
        return [redact_doc(v) for v in doc]
    return doc


_installed = False


def install_log_redaction() -> None:
    """Every log record's message is redacted when it is made (once per process)."""
    global _installed
    if _installed:
        return
    _installed = True
    make = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = make(*args, **kwargs)
        try:
            message = record.getMessage()
        except Exception:  # a broken format string: leave it to the handler to complain
            return record
        clean = redact(message)
        if clean != message or record.args:
            record.msg, record.args = clean, ()
        return record

    logging.setLogRecordFactory(factory)


class RedactingStream:
    """A text stream that redacts what is written to it, for a command's stdout and stderr. Everything
    else (isatty, fileno, encoding: what rich and print ask) is the wrapped stream's."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        return int(self._stream.write(redact(text)) or 0)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
