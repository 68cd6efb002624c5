"""A local fake of Twilio's Messages API, for driving the real twilio SDK over HTTP.

It answers ``POST /2010-04-01/Accounts/<sid>/Messages.json`` like Twilio: 201 with the message resource as
JSON, or an error document (``{"code", "message", "more_info", "status"}``) that the SDK turns into a
``TwilioRestException``. Failures are scripted: ``fail_next(2, status=500)`` makes the next two requests fail.
"""

from __future__ import annotations

import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

# Error codes Twilio uses for these statuses (https://www.twilio.com/docs/api/errors).
DEFAULT_ERROR_CODES = {400: 21211, 401: 20003, 404: 20404, 429: 20429, 500: 20500, 503: 20503}


@dataclass
class ReceivedRequest:
    """One request the fake answered, accepted or not."""

    method: str
    path: str
    account_sid: str
    form: dict[str, str]
    status: int
    authorised: bool


@dataclass
class ScriptedFailure:
    status: int
    code: int | None
    message: str | None


@dataclass
class FakeTwilio:
    """Twilio's Messages API on 127.0.0.1 at a random port. ``messages`` holds what was accepted."""

    account_sid: str = field(default_factory=lambda: "AC" + secrets.token_hex(16))
    auth_token: str = field(default_factory=lambda: secrets.token_hex(16))
    from_number: str = "+3197010000000"
    # Seconds each request waits before it is answered, to hold concurrent senders in flight.
    delay: float = 0.0
    requests: list[ReceivedRequest] = field(default_factory=list)
    messages: list[dict[str, str]] = field(default_factory=list)
    _failures: list[ScriptedFailure] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        assert self._server is not None, "the fake is not running"
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def fail_next(
        self, count: int = 1, *, status: int = 500, code: int | None = None, message: str = ""
    ) -> None:
        """Answer the next ``count`` requests with this error instead of accepting them."""
        with self._lock:
            for _ in range(count):
                self._failures.append(
                    ScriptedFailure(status, code or DEFAULT_ERROR_CODES.get(status), message or None)
                )

    def start(self) -> FakeTwilio:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode("utf-8")
                form = {key: values[-1] for key, values in parse_qs(raw, keep_blank_values=True).items()}
                status, payload = fake._answer(self.path, self.headers.get("Authorization", ""), form)
                body = json.dumps(payload).encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                """Silent: the fake's access log would print numbers into the test output."""

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-twilio", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> FakeTwilio:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _answer(self, path: str, authorization: str, form: dict[str, str]) -> tuple[int, dict[str, Any]]:
        if self.delay:
            time.sleep(self.delay)
        parts = path.split("?", 1)[0].strip("/").split("/")
        is_messages = (
            len(parts) == 4 and parts[:2] == ["2010-04-01", "Accounts"] and parts[3] == "Messages.json"
        )
        account_sid = parts[2] if is_messages else ""
        expected = "Basic " + base64.b64encode(f"{self.account_sid}:{self.auth_token}".encode()).decode()
        authorised = secrets.compare_digest(authorization, expected) and account_sid == self.account_sid
        with self._lock:
            failure = self._failures.pop(0) if self._failures else None
            if not is_messages:
                status, payload = 404, _error(404, 20404, "The requested resource was not found")
            elif not authorised:
                status, payload = 401, _error(401, 20003, "Authenticate")
            elif failure is not None:
                # Like Twilio, quote the number in the message: callers must not log or store it.
                text = failure.message or f"Error for To number {form.get('To', '')}"
                status, payload = failure.status, _error(failure.status, failure.code, text)
            elif not form.get("To") or not (form.get("Body") or form.get("MediaUrl")):
                status, payload = 400, _error(400, 21604, "A 'To' phone number and a 'Body' are required.")
            else:
                status, payload = 201, self._accept(account_sid, form)
            self.requests.append(ReceivedRequest("POST", path, account_sid, form, status, authorised))
        return status, payload

    def _accept(self, account_sid: str, form: dict[str, str]) -> dict[str, Any]:
        sid = "SM" + secrets.token_hex(16)
        now = formatdate(usegmt=True)
        self.messages.append(
            {"sid": sid, "To": form["To"], "From": form.get("From", ""), "Body": form["Body"]}
        )
        return {
            "sid": sid,
            "account_sid": account_sid,
            "api_version": "2010-04-01",
            "to": form["To"],
            "from": form.get("From"),
            "messaging_service_sid": form.get("MessagingServiceSid"),
            "body": form["Body"],
            "status": "queued",
            "direction": "outbound-api",
            "num_segments": "1",
            "num_media": "0",
            "price": None,
            "price_unit": "USD",
            "error_code": None,
            "error_message": None,
            "date_created": now,
            "date_updated": now,
            "date_sent": None,
            "uri": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}.json",
            "subresource_uris": {"media": f"/2010-04-01/Accounts/{account_sid}/Messages/{sid}/Media.json"},
        }


def _error(status: int, code: int | None, message: str) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }
