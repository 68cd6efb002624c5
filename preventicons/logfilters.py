"""A logging filter that redacts what must never reach a log line: addresses, numbers and tokens."""

from __future__ import annotations

import logging
import re

_PATTERNS = (
    re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"),  # e-mail addresses
    re.compile(r"\+?\d[\d \-]{7,}\d"),  # phone numbers, in any common notation
    re.compile(r"[A-Za-z0-9_-]{20,}"),  # link and session tokens, hashes
)


def redact(text: str) -> str:
    for pattern in _PATTERNS:
        text = pattern.sub("[redacted]", text)
    return text


class RedactFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        return True
