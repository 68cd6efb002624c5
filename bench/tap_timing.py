"""How long a tap's POST takes to answer: a first tap, a repeated one, and one refused (the person stopped).

    python -m bench.tap_timing        (DATABASE_URL names the server, default 127.0.0.1)
    BENCH_TAP_SAMPLES=400             (taps of each kind; this default)

Whoever holds a weekly link can time its answer. A repeated tap and a refused one can be tried as often as
one likes, so they must not differ; a first tap can be tried once per week (it records), so one sample must
not tell it apart from a repeat. gunicorn (2 sync workers) on 127.0.0.1 against the bench databases, one
client, the three kinds taken in turn so that the machine's noise falls on all three alike. Prints the
median, the 10th and the 90th percentile of each, in milliseconds, and the median differences.
"""

from __future__ import annotations

import os
import statistics
import time
from urllib.parse import urlencode

from bench import bench_organisation, prepare
from bench._server import free_port, gunicorn, weekly_links
from bench.submissions import _request

SAMPLES = int(os.environ.get("BENCH_TAP_SAMPLES", "400"))
WORKERS = 2
KINDS = ("first", "repeated", "refused")


def _figures(samples: list[float]) -> str:
    deciles = statistics.quantiles(samples, n=10)
    return f"median {statistics.median(samples):6.2f}   p10 {deciles[0]:6.2f}   p90 {deciles[8]:6.2f}"


def main() -> None:
    os.environ.setdefault("CELERY_BROKER_URL", "memory://")
    prepare()
    from participants.models import Participant
    from preventicons.crypto import hash_token
    from scores.models import WeeklyLink

    with bench_organisation("tap-timing") as organisation:
        tokens = weekly_links(organisation, SAMPLES + 2)
        repeated, refused, fresh = tokens[0], tokens[1], iter(tokens[2:])
        # The refused link's holder stopped: as a stop leaves the row, no pseudonym, nothing recorded.
        holder = WeeklyLink.objects.get(token_hash=hash_token(refused)).participant_id
        Participant.objects.filter(pk=holder).set_state(status=Participant.Status.STOPPED, pseudonym=None)

        port = free_port()
        headers = {"Content-Type": "application/x-www-form-urlencoded"}
        body = urlencode({"value": "3"})

        def tap(token: str) -> float:
            started = time.perf_counter()
            status, answer, _content = _request(port, "POST", f"/w/{token}/", body, headers)
            elapsed = (time.perf_counter() - started) * 1000
            assert status == 303 and "/thanks/?tapped=" in answer.get("Location", ""), status
            return elapsed

        with gunicorn(port, WORKERS):
            tap(repeated)  # answers the repeated link's week, and warms a worker
            for _ in range(20):
                tap(repeated)
                tap(refused)
            taken: dict[str, list[float]] = {kind: [] for kind in KINDS}
            for _ in range(SAMPLES):
                taken["first"].append(tap(next(fresh)))
                taken["repeated"].append(tap(repeated))
                taken["refused"].append(tap(refused))
        print(f"Tap POST answer time through gunicorn ({WORKERS} sync workers), {SAMPLES} of each, ms")
        for kind in KINDS:
            print(f"  {kind:9} {_figures(taken[kind])}")
        median = {kind: statistics.median(taken[kind]) for kind in KINDS}
        print(
            f"  first - repeated: {median['first'] - median['repeated']:+.2f} ms   "
            f"refused - repeated: {median['refused'] - median['repeated']:+.2f} ms"
        )


if __name__ == "__main__":
    main()
