"""A logging filter that redacts what must never reach a log line: addresses, numbers and tokens.

It sits on every handler LOGGING configures (settings.py), so it also catches records that propagate from
loggers we do not own (django.security, django.server, celery.redirected: a Celery worker's stdout). A
handler filter, not a logger filter: a logger's filters do not see records propagated from its children.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Mapping

# Path segments that carry a link token, whatever its length: /i/<token>/, /w/<token>/, /me/link/<token>/;
# and a dossier number (/dossiers/<number>/), which belongs in the access log only.
# tests/preventicons/test_logging.py walks the URLconf, so a token pattern under another prefix fails there.
TOKEN_PATH_PREFIXES = ("i", "w", "me/link", "dossiers")
_TOKEN_PATH = re.compile(
    r"(/(?:" + "|".join(re.escape(prefix) for prefix in TOKEN_PATH_PREFIXES) + r")/)(?!stop/)[^/\s?#\"']+"
)
_DATE = r"(?:19|20)\d\d-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01])(?![\d-])"
_PATTERNS = (
    # A query string may hold a signed mark (the thanks page's) or a token; the path says enough.
    (re.compile(r"\?[^\s\"']*"), "?[redacted]"),
    (_TOKEN_PATH, r"\1[redacted]"),
    (re.compile(r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+"), "[redacted]"),  # e-mail addresses
    # Phone numbers, in any common notation: not from the middle of a longer number, and not a calendar date
    # (the round's "week 2026-11-23", a timestamp), which has no phone number's shape in any country we serve.
    (re.compile(r"(?<![\d-])(?!" + _DATE + r")\+?\d[\d \-]{7,}\d"), "[redacted]"),
    # Link and session tokens, keys and hashes: runs of 20 or more with a digit or a capital, which a token
    # has all but always and a Python name in a traceback (self.count_participation_for) does not; and any
    # run of 32 or more, for the rare token without either.
    (re.compile(r"(?=[a-z_-]*[A-Z0-9])[A-Za-z0-9_-]{20,}|[A-Za-z0-9_-]{32,}"), "[redacted]"),
)


# Celery's line for a task that ran (celery.app.trace.LOG_SUCCESS, "... succeeded in %(runtime)ss:
# %(return_value)s"), without its runtime and return value: a sender run that ended one message returned how
# many it sent and took a provider call's time or none, which told the operator whether that message went to
# someone who takes part or stood in for someone who does not (review 12). That it ran is all the line says.
_TASK_SUCCEEDED = "Task %(name)s[%(id)s] succeeded"


def redact(text: str) -> str:
    """``text`` without addresses, numbers, tokens, token paths and query strings."""
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


class RedactFilter(logging.Filter):
    """Rewrites a record's message, exception text and stack into their redacted form before any handler
    formats it."""

    _formatter = logging.Formatter()

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if record.name == "celery.app.trace" and isinstance(args, Mapping) and "runtime" in args:
            record.msg = _TASK_SUCCEEDED
            record.args = {"name": args.get("name", ""), "id": args.get("id", "")}
        try:
            message = record.getMessage()
        except (TypeError, ValueError):
            message = str(record.msg)
        record.msg = redact(message)
        record.args = None
        # A traceback quotes exception texts, which may carry a path or a value ("Not Found: /w/<token>/").
        if record.exc_info:
            record.exc_text = redact(record.exc_text or self._formatter.formatException(record.exc_info))
        if record.stack_info:
            record.stack_info = redact(record.stack_info)
        return True
