"""The fixed-rate load generator (bench/load.py): its figures must mean what the table says.

An open-loop generator that measured from when it got round to a request, or waited for the server, would
report a slow server as fast (coordinated omission); these tests hold it to the schedule. Only lower bounds
on time: the machine may be slower than ever, never faster than the server's own delay.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import http.server
import math
import threading
import time
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import pytest

import bench.load
from bench.load import (
    CpuTimes,
    Tally,
    Usage,
    cores_used,
    insert_job,
    open_loop,
    parse_cpu_times,
    percentile,
    process_ticks,
    serving_ms_per_job,
    split_ms_per_job,
    tap_job,
)

DELAY = 0.2
T = TypeVar("T")


def _run(coroutine: Coroutine[Any, Any, T]) -> T:
    """asyncio.run in a thread of its own: a browser test earlier in this worker (Playwright's sync API)
    leaves an event loop running in the main thread, where asyncio.run refuses to start another."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as thread:
        return thread.submit(asyncio.run, coroutine).result()


class _SlowPhone(http.server.BaseHTTPRequestHandler):
    """Today's tap path in miniature, every answer after DELAY: the smileys, the 303 and the thanks."""

    protocol_version = "HTTP/1.0"  # one request per connection, closed after the answer, like gunicorn's

    def _answer(self, status: int, body: bytes = b"", location: str = "") -> None:
        time.sleep(DELAY)
        self.send_response(status)
        if location:
            self.send_header("Location", location)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        if "/thanks/" in self.path:
            self._answer(200, b'<h1 id="thanks">Thank you</h1>')
        else:
            self._answer(200, b'<h1 id="week-question">How was your week?</h1>')

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        if self.path.startswith("/w/"):
            self._answer(303, location=self.path + "thanks/?tapped=mark")
        else:
            self._answer(200, b"ok")

    def log_message(self, format: str, *args: object) -> None:
        """Quiet: the test reads the tally, not the log."""


@contextlib.contextmanager
def _server(server_class: type[http.server.HTTPServer]) -> Iterator[int]:
    server = server_class(("127.0.0.1", 0), _SlowPhone)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()


class _SerialServer(http.server.HTTPServer):
    """One request at a time, like a single sync worker."""

    request_queue_size = 128  # every open-loop connection waits its turn in the backlog, none is refused


class _ThreadedServer(http.server.ThreadingHTTPServer):
    """As many at a time as arrive: only DELAY per request, no queue."""

    request_queue_size = 128


def test_percentile_is_the_nearest_rank() -> None:
    values = [float(n) for n in range(100, 0, -1)]
    assert percentile(values, 0.50) == 50.0
    assert percentile(values, 0.99) == 99.0
    assert percentile([7.0], 0.99) == 7.0
    assert math.isnan(percentile([], 0.5))


def test_failed_taps_push_p99_to_infinity_once_more_than_one_in_a_hundred() -> None:
    one_failed = [0.01] * 99 + [math.inf]
    assert percentile(one_failed, 0.99) == 0.01
    assert percentile([*one_failed, math.inf], 0.99) == math.inf


def test_steal_and_busy_are_counted_in_cores_from_proc_stat() -> None:
    before = parse_cpu_times(
        "cpu  1000 10 300 5000 40 5 15 20 0 0\ncpu0 500 5 150 2500 20 2 7 10 0 0\nintr 1 2 3\n"
    )
    after = parse_cpu_times("cpu  1150 10 330 5100 40 5 35 70 0 0\n")
    assert before == CpuTimes(busy=1000 + 10 + 300 + 5 + 15, steal=20)
    # Over 2 s at 100 ticks per second: 200 busy ticks is one core, 50 stolen ticks a quarter of one.
    busy, steal = cores_used(before, after, seconds=2.0, hz=100)
    assert busy == pytest.approx(1.0)
    assert steal == pytest.approx(0.25)


def test_a_process_cpu_is_read_past_a_command_name_with_spaces_and_parentheses() -> None:
    # utime 700 and stime 42 are the 14th and 15th fields; the name in parentheses may hold anything.
    line = "4242 (gunicorn: a (b) c) S 4200 4242 4242 0 -1 4194560 100 0 0 0 700 42 0 0 20 0 1 0 9 0 0"
    assert process_ticks(line) == 742


def test_serving_cpu_is_shared_out_over_every_job_of_the_segment() -> None:
    # Half a core of gunicorn and a tenth of PostgreSQL for 2 s over 100 jobs: 12 ms each.
    usage = Usage(busy=1.9, web=0.5, database=0.1, generator=0.2, seconds=2.0)
    assert serving_ms_per_job(Tally(taps=[0.01] * 99 + [math.inf]), usage) == pytest.approx(12.0)
    assert math.isnan(serving_ms_per_job(Tally(), usage))
    # The same in its two parts: 10 ms of gunicorn and 2 ms of PostgreSQL.
    assert split_ms_per_job(Tally(taps=[0.01] * 100), usage) == pytest.approx((10.0, 2.0))


def test_a_late_generator_still_measures_from_the_scheduled_start() -> None:
    calls = 0

    async def job(started: float, tally: Tally) -> bool:
        nonlocal calls
        calls += 1
        if calls == 1:
            time.sleep(0.5)  # the event loop is busy: the next taps start after their scheduled time
        await asyncio.sleep(0.05)
        return True

    tally = _run(open_loop(rate=10, seconds=0.5, job=job))
    assert calls == 5
    # The taps scheduled 0.1-0.4 s in could not start before 0.5 s: the last one 0.1 s late plus its own
    # 0.05 s, the middle one 0.3 s late.
    assert min(tally.taps) >= 0.149
    assert percentile(tally.taps, 0.5) >= 0.349


def test_every_tap_makes_three_requests_each_timed_at_least_the_servers_delay() -> None:
    with _server(_ThreadedServer) as port:
        tally = _run(open_loop(rate=5, seconds=2, job=tap_job(port, iter(f"t{n}" for n in range(99)))))
    assert tally.errors == 0
    assert len(tally.taps) == 10
    assert {kind: len(seconds) for kind, seconds in tally.requests.items()} == {
        "page": 10,
        "POST": 10,
        "thanks": 10,
    }
    assert percentile(tally.requests["page"], 0.5) >= DELAY
    assert percentile(tally.taps, 0.5) >= 3 * DELAY


def test_a_server_that_falls_behind_shows_its_queue_in_the_latencies() -> None:
    # Ten requests in one second at a server that answers one per 0.2 s: the last is answered at 2 s or
    # later, 1.1 s after its scheduled start. A generator that waited for each answer (closed loop) would
    # have sent five and seen 0.2 s for each.
    with _server(_SerialServer) as port:
        tally = _run(open_loop(rate=10, seconds=1, job=insert_job(port, {"week": "2026-11-30"})))
    assert tally.errors == 0
    assert len(tally.taps) == 10
    assert percentile(tally.taps, 0.5) >= 0.6
    assert max(tally.taps) >= 1.1
    assert tally.seconds >= 2.0


def test_a_tap_not_done_by_its_deadline_fails_and_counts_as_infinitely_slow(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(bench.load, "TIMEOUT", DELAY / 2)
    with _server(_ThreadedServer) as port:
        tally = _run(open_loop(rate=5, seconds=1, job=tap_job(port, iter(f"t{n}" for n in range(99)))))
    assert tally.errors == 5
    assert tally.taps == [math.inf] * 5
    assert tally.completed == 0
    assert math.isinf(percentile(tally.taps, 0.99))
