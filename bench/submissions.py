"""Weekly smiley submissions per second through gunicorn, next to a one-INSERT view on the same server.

    make bench                        (every benchmark)
    python -m bench.submissions       (this one; DATABASE_URL names the server, default 127.0.0.1)
    BENCH_SECONDS=20 BENCH_CLIENTS=8  (load duration per target and concurrent clients; these defaults)

gunicorn runs on 127.0.0.1 with 2 sync workers against the bench databases, with bench/trivial/settings.py:
the product's URLs plus /bench/insert/ (bench/trivial/views.py), which inserts one score row and nothing else.
Each submission is a real POST of the smiley form with a fresh participant's link; it answers 303 to the
thanks page, which the third figure also fetches, as a browser does.
Clients are Python threads with http.client, a bounded number of requests in flight.
"""

from __future__ import annotations

import http.client
import itertools
import os
import threading
import time
from collections.abc import Callable
from urllib.parse import urlencode

from bench import bench_organisation, prepare
from bench._server import free_port, gunicorn, this_week, weekly_links

SECONDS = float(os.environ.get("BENCH_SECONDS", "20"))
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "8"))
WORKERS = 2
# More links than the submissions the run can make: each submission uses a participant of its own.
LINKS = int(os.environ.get("BENCH_LINKS", "40000"))


def _request(
    port: int, method: str, path: str, body: str | None, headers: dict[str, str]
) -> tuple[int, dict[str, str], bytes]:
    # Sync workers close every connection after the response: one connection per request, like the browser.
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request(method, path, body=body, headers=headers)
        response = connection.getresponse()
        content = response.read()
        return response.status, dict(response.getheaders()), content
    finally:
        connection.close()


def _load(send: Callable[[], bool], seconds: float) -> tuple[int, int, float]:
    """Run ``send`` from CLIENTS threads for ``seconds``; returns (ok, failed, elapsed)."""
    ok = itertools.count()
    failed = itertools.count()
    stop_at = time.monotonic() + seconds

    def client() -> None:
        while time.monotonic() < stop_at:
            try:
                good = send()
            except OSError:
                good = False
            next(ok if good else failed)

    started = time.monotonic()
    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    return next(ok), next(failed), elapsed


def main() -> None:
    # No worker runs during the bench: nothing is queued by a submission anyway.
    os.environ.setdefault("CELERY_BROKER_URL", "memory://")
    prepare()
    from scores.models import Score

    week = this_week()
    port = free_port()
    with bench_organisation("submissions") as organisation:
        tokens = weekly_links(organisation, LINKS)
        with gunicorn(port, WORKERS):
            # The smiley form carries no CSRF token (scores.views.week): the link's token is its authority.
            form_headers = {"Content-Type": "application/x-www-form-urlencoded"}
            unused = iter(tokens)
            lock = threading.Lock()
            smiley_body = urlencode({"value": "3"})

            def tap() -> str | None:
                """POST a smiley on an unused link, as the form does; the thanks URL when it was recorded."""
                with lock:
                    token = next(unused)
                status, headers, _content = _request(port, "POST", f"/w/{token}/", smiley_body, form_headers)
                location = headers.get("Location", "")
                return location if status == 303 and "/thanks/?tapped=" in location else None

            def submit() -> bool:
                return tap() is not None

            def submit_and_thank() -> bool:
                location = tap()
                if location is None:
                    return False
                status, _headers, content = _request(port, "GET", location, None, {})
                return status == 200 and b'id="thanks"' in content

            trivial_body = urlencode({"organisation": organisation.pk, "week": week.isoformat()})

            def insert() -> bool:
                status, _headers, _content = _request(
                    port, "POST", "/bench/insert/", trivial_body, form_headers
                )
                return status == 200

            print(
                f"Submissions through gunicorn ({WORKERS} sync workers, 127.0.0.1:{port}), "
                f"{CLIENTS} clients, {SECONDS:.0f} s per target",
                flush=True,
            )
            _load(insert, 2)  # warm both workers' connections and imports
            Score.objects.filter(organisation=organisation).delete()
            real_ok, real_failed, real_seconds = _load(submit, SECONDS)
            recorded = Score.objects.filter(organisation=organisation).count()
            trivial_ok, trivial_failed, trivial_seconds = _load(insert, SECONDS)
            both_ok, both_failed, both_seconds = _load(submit_and_thank, SECONDS)
            real_rate = real_ok / real_seconds
            trivial_rate = trivial_ok / trivial_seconds
            both_rate = both_ok / both_seconds
            print(
                f"  smiley POST /w/<token>/ (records, 303)   {real_rate:8.1f} req/s   "
                f"({real_ok} recorded, {real_failed} failed)"
            )
            print(
                f"  trivial one-INSERT view                  {trivial_rate:8.1f} req/s   "
                f"({trivial_ok} inserted, {trivial_failed} failed)"
            )
            print(
                f"  smiley POST, then its thanks page        {both_rate:8.1f} taps/s  "
                f"({both_ok} recorded and thanked, {both_failed} failed)"
            )
            assert recorded == real_ok, (recorded, real_ok)
            verdict = "met" if real_rate >= 0.5 * trivial_rate else "NOT MET"
            print(
                f"  ratio smiley POST / trivial: {real_rate / trivial_rate:.0%} "
                f"(target at least 50%: {verdict}); with the thanks page: {both_rate / trivial_rate:.0%}",
                flush=True,
            )
    print("  (bench rows removed)", flush=True)


if __name__ == "__main__":
    main()
