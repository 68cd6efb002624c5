"""Logs beside the app carry no token: whoever reads a log file or a console learns no link.

What is asserted is what the configured handlers themselves write: each one's stream is pointed at a buffer
for the test, its filters and formatting left as configured. Tokens here are of two shapes: a real one
(43 URL-safe characters) and a short one, which only the token-path rule can catch.
"""

from __future__ import annotations

import io
import logging
from collections.abc import Iterator

import pytest
from celery.utils.log import LoggingProxy, get_logger
from django.test import Client

from preventicons.crypto import new_token
from preventicons.logfilters import RedactFilter, redact
from tests.preventicons.urlconf import TOKEN_ROUTES

SHORT_TOKEN = "Zq7Kp2"
ADDRESS = "eva.devries@zorggroep-noord.example"
NUMBER = "+31612345670"

# Loggers a running installation writes through: Django's (request, security, the development server, the
# database), Celery's (task trace, task loggers, a worker's redirected stdout, billiard), ours, a library's.
LOGGERS = [
    "",
    "django",
    "django.request",
    "django.security.csrf",
    "django.security.DisallowedHost",
    "django.server",
    "django.db.backends",
    "django.template",
    "celery",
    "celery.app.trace",
    "celery.task",
    "celery.redirected",
    "celery.worker.strategy",
    "multiprocessing",
    "preventicons.messaging",
    "preventicons.gateways",
    "participants.enrolment",
    "some.library",
]


def test_the_urlconf_has_the_token_routes_we_know_of() -> None:
    # A sanity check of the walk itself: should it find nothing, every test below would pass vacuously.
    assert {"/i/<token>/", "/w/<token>/", "/me/link/<token>/"} <= set(TOKEN_ROUTES)


def _handlers_reached(name: str) -> list[logging.Handler]:
    logger: logging.Logger | None = logging.getLogger(name)
    handlers: list[logging.Handler] = []
    while logger is not None:
        # pytest's own capturing handlers are the test run's, not the installation's; a NullHandler (a
        # library's "no output unless configured") writes nothing.
        handlers += [
            handler
            for handler in logger.handlers
            if not type(handler).__module__.startswith("_pytest")
            and not isinstance(handler, logging.NullHandler)
        ]
        if not logger.propagate:
            break
        logger = logger.parent
    return handlers


@pytest.mark.parametrize("name", LOGGERS)
def test_every_handler_a_logger_reaches_redacts(name: str) -> None:
    handlers = _handlers_reached(name)

    assert handlers, f"logger {name!r} reaches no handler"
    for handler in handlers:
        assert any(isinstance(f, RedactFilter) for f in handler.filters), (name, handler)


@pytest.fixture
def written() -> Iterator[io.StringIO]:
    """What every configured handler writes, from every logger, at every level."""
    buffer = io.StringIO()
    levels = {name: logging.getLogger(name).level for name in LOGGERS}
    handlers = {handler for name in LOGGERS for handler in _handlers_reached(name)}
    streams = {}
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    for handler in handlers:
        assert isinstance(handler, logging.StreamHandler), handler
        streams[handler] = handler.setStream(buffer)
    yield buffer
    for handler, stream in streams.items():
        handler.setStream(stream)
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)


@pytest.mark.parametrize("route", TOKEN_ROUTES)
@pytest.mark.parametrize("name", LOGGERS)
def test_no_logger_writes_a_token_path_a_mark_an_address_or_a_number(
    name: str, route: str, written: io.StringIO
) -> None:
    token = new_token()
    logger = logging.getLogger(name)
    for secret in (token, SHORT_TOKEN):
        path = route.replace("<token>", secret)
        logger.warning("Forbidden (CSRF cookie not set.): %s", path)
        logger.info('"GET %s?recorded=1:1tXq9Z:%s HTTP/1.1" 200 512', path, SHORT_TOKEN)
        logger.warning("SMS to %s and e-mail to %s: %s", NUMBER, ADDRESS, path)
    try:
        raise ValueError(f"Not Found: {route.replace('<token>', SHORT_TOKEN)}")
    except ValueError:
        logger.exception("Internal Server Error")

    output = written.getvalue()
    assert "Forbidden (CSRF cookie not set.)" in output and "Internal Server Error" in output
    for secret in (token, SHORT_TOKEN, NUMBER, ADDRESS, "1tXq9Z"):
        assert secret not in output


@pytest.mark.django_db
@pytest.mark.parametrize("debug", [True, False])
def test_djangos_csrf_refusal_of_a_token_page_logs_no_token(
    debug: bool, settings: object, written: io.StringIO
) -> None:
    # DEBUG is what development runs with: Django's own console handler printed this line unredacted.
    settings.DEBUG = debug  # type: ignore[attr-defined]
    token = new_token()
    client = Client(enforce_csrf_checks=True)

    response = client.post(f"/i/{token}/", {"x": "1"})

    assert response.status_code == 403
    output = written.getvalue()
    assert "Forbidden (CSRF cookie not set.): /i/[redacted]/" in output
    assert token not in output


def test_a_celery_workers_redirected_stdout_is_redacted(written: io.StringIO) -> None:
    # What a worker installs as sys.stdout (worker_redirect_stdouts): the console SMS gateway prints there.
    token = new_token()
    stdout = LoggingProxy(get_logger("celery.redirected"), logging.WARNING)

    stdout.write(f"SMS to {NUMBER}:\nJe code: https://preventicons.example/w/{token}/\n")
    stdout.flush()

    output = written.getvalue()
    assert "SMS to" in output
    assert token not in output and NUMBER not in output


def test_redaction_leaves_ordinary_paths_readable() -> None:
    assert redact("GET /w/stop/ 200") == "GET /w/stop/ 200"
    assert redact("GET /staff/import/ 200") == "GET /staff/import/ 200"
    assert redact("GET /w/abc/thanks/?recorded=x 303") == "GET /w/[redacted]/thanks/?[redacted] 303"


def test_redaction_leaves_dates_and_python_names_readable_and_still_takes_numbers_and_tokens() -> None:
    # The round's own log line, a timestamp and a traceback line read as they were written ...
    assert redact("weekly round organisation 6 week 2026-11-23: 10 links") == (
        "weekly round organisation 6 week 2026-11-23: 10 links"
    )
    assert redact("at 2026-12-03 10:09:56") == "at 2026-12-03 10:09:56"
    assert redact("    self.count_participation_for(rows)") == "    self.count_participation_for(rows)"
    # ... and what looks like a date but is a longer number, or a number in a date's place, is still taken.
    for number in ("0612-34-56 78", "2026-11-23-45", "+31 6 1234 5678", "06-12345678", "1234567890"):
        assert redact(f"call {number} now") == "call [redacted] now", number
    for token in ("abcdefghijklmnopqrst1", "Abcdefghijklmnopqrstu", "a" * 32, "x-y_z" * 7):
        assert redact(f"token {token}.") == "token [redacted].", token
