"""The notary's ledger at 100,000 entries on PostgreSQL (issue #20: appending 100,000 entries and proving the
inclusion of one).

    make bench                       (every benchmark)
    python -m bench.ledger           (this one; DATABASE_URL names the server, default 127.0.0.1)

Measured, each once (these are batch jobs and an auditor's checks, not requests):
- appending ENTRIES facts through ``append_many`` in batches of BATCH, as the nightly feed appends them: per
  batch one transaction under the append lock, each entry's keyed source looked up, its sequence, leaf hash
  and seal computed, the batch inserted;
- signing a tree head over all of them (one pass over every stored leaf hash), and signing again with no new
  entry (the existing head is returned: the nightly job is idempotent);
- an inclusion proof for one entry picked at random, produced against that head (one pass over the leaf
  hashes) and verified (log2 n hashes);
- after one more batch and a second head, the consistency proof between the two heads, produced and verified;
- ``verify()`` over the whole ledger: every entry's canonical form against its leaf hash and seal, every
  head's root recomputed from the entries and its signature checked, consecutive heads proved consistent.

The ledger's tables are append-only (notary migration 0005). The bench works in its own databases, so it
removes its entries and heads afterwards past the triggers (``session_replication_role = replica``, which
needs the superuser the bench connects as): every run then starts from the same ledger.
"""

from __future__ import annotations

import datetime as dt
import random
import secrets
import time
from dataclasses import dataclass
from typing import Any

from bench import prepare

ENTRIES = 100_000
BATCH = 1_000
ORGANISATIONS = 40
WEEKS = 156
# Of the trajectory facts, about one in six opens a trajectory and one in six completes one; the rest are
# sessions: roughly what four sessions per trajectory give.
KINDS = ("trajectory_opened", "session_held", "session_held", "session_held", "session_held", "completed")


@dataclass(frozen=True)
class Sizes:
    entries: int = ENTRIES
    batch: int = BATCH


@dataclass(frozen=True)
class Figures:
    """What one run measured: seconds for the whole-ledger steps, milliseconds for the rest."""

    appended: int
    tree_size: int  # the first head's size: the entries appended and any the ledger held before
    append_s: float
    sign_head_s: float
    sign_again_ms: float
    proved_sequence: int
    inclusion_hashes: int
    inclusion_proof_ms: float
    inclusion_verify_ms: float
    second_head_size: int
    consistency_hashes: int
    consistency_proof_ms: float
    consistency_verify_ms: float
    verify_s: float
    problems: int

    @property
    def appended_per_second(self) -> float:
        return self.appended / self.append_s if self.append_s else 0.0


def facts(count: int, start: int, run: str, rng: random.Random) -> list[Any]:
    """``count`` trajectory facts for random organisations and weeks, with sources unique to this run."""
    from notary.ledger import Fact

    first_week = dt.date(2024, 1, 1)  # a Monday
    made = []
    for n in range(start, start + count):
        kind = rng.choice(KINDS)
        week = first_week + dt.timedelta(weeks=rng.randrange(WEEKS))
        reference = f"TR-BNCH-{n // 10_000:04d}-{n % 10_000:04d}"
        organisation = 1 + rng.randrange(ORGANISATIONS)
        if kind == "completed":
            outcome = rng.choice(("improved", "not_improved", "not_measurable"))
            made.append(
                Fact(
                    kind="trajectory_completed",
                    source=f"bench-ledger:{run}:{n}",
                    week=week,
                    reference=reference,
                    organisation_id=organisation,
                    facts={"outcome": outcome, "sessions_held": rng.randint(1, 8)},
                )
            )
            continue
        made.append(
            Fact(
                kind=kind,
                source=f"bench-ledger:{run}:{n}",
                week=week,
                reference=reference,
                organisation_id=organisation,
                facts={"kind": "coaching"} if kind == "trajectory_opened" else {},
            )
        )
    return made


def append_in_batches(count: int, start: int, sizes: Sizes, run: str, rng: random.Random) -> float:
    """Append ``count`` facts, ``sizes.batch`` per call (not timed: making the facts); the seconds taken."""
    from notary import ledger

    seconds = 0.0
    for first in range(start, start + count, sizes.batch):
        batch = facts(min(sizes.batch, start + count - first), first, run, rng)
        started = time.perf_counter()
        appended = ledger.append_many(batch)
        seconds += time.perf_counter() - started
        if len(appended) != len(batch):
            raise SystemExit(f"appended {len(appended)} of {len(batch)} new facts")
    return seconds


def remove_after(entries: int, heads: int) -> bool:
    """Remove entries after sequence ``entries`` and heads over more than ``heads`` entries, past the
    append-only triggers, and the heads' copies in the identity store (notary.ledger.anchor: the ledger
    would rightly report a head copied there that it no longer holds); False when this role may not (then
    they all stay)."""
    from django.db import DatabaseError, connections, transaction

    from notary import ledger
    from notary.models import LedgerEntry, TreeHead
    from preventicons.dbrouter import CASEFILES, DEFAULT
    from preventicons.models import LogAnchor

    try:
        with (
            transaction.atomic(using=CASEFILES),
            transaction.atomic(using=DEFAULT),
            connections[CASEFILES].cursor() as cursor,
            connections[DEFAULT].cursor() as identity,
        ):
            cursor.execute("SET LOCAL session_replication_role = replica")
            identity.execute("SET LOCAL session_replication_role = replica")
            TreeHead.objects.filter(tree_size__gt=heads).delete()
            LedgerEntry.objects.filter(sequence__gt=entries).delete()
            LogAnchor.objects.filter(log=ledger.ANCHOR_LOG, tree_size__gt=heads).delete()
            # Inside the test suite's transaction SET LOCAL would outlive this block: the triggers back on.
            cursor.execute("SET LOCAL session_replication_role = origin")
            identity.execute("SET LOCAL session_replication_role = origin")
    except DatabaseError:
        return False
    return True


def report(figures: Figures) -> None:
    lines = [
        f"append {figures.appended:,} entries: {figures.append_s:.2f} s "
        f"({figures.appended_per_second:,.0f} entries/s)",
        f"sign a tree head at size {figures.tree_size:,}: {figures.sign_head_s:.2f} s",
        f"sign again, nothing new: {figures.sign_again_ms:.1f} ms (the same head)",
        f"inclusion proof of entry {figures.proved_sequence:,} in the head: "
        f"{figures.inclusion_proof_ms:.1f} ms "
        f"({figures.inclusion_hashes} hashes), verified in {figures.inclusion_verify_ms:.3f} ms",
        f"consistency proof {figures.tree_size:,} -> {figures.second_head_size:,}: "
        f"{figures.consistency_proof_ms:.1f} ms ({figures.consistency_hashes} hashes), "
        f"verified in {figures.consistency_verify_ms:.3f} ms",
        f"verify() over the whole ledger and both heads: {figures.verify_s:.2f} s "
        f"({figures.problems} problems)",
    ]
    print("\n".join(f"  {line}" for line in lines), flush=True)


def run(sizes: Sizes | None = None) -> Figures:
    """Append, sign, prove, verify, print the figures, remove what was appended; the figures."""
    sizes = sizes or Sizes()
    from django.db import connections

    from notary import ledger
    from preventicons.dbrouter import CASEFILES

    run_id = secrets.token_hex(4)
    rng = random.Random(run_id)
    before = ledger.ledger_size()
    last = ledger.latest_head()
    heads_before = last.tree_size if last is not None else -1
    connection = connections[CASEFILES]
    print(
        f"Ledger on PostgreSQL {getattr(connection, 'pg_version', 0) // 10000} "
        f"({connection.settings_dict['NAME']}): {sizes.entries:,} entries appended in batches of "
        f"{sizes.batch:,} to a ledger of {before:,}",
        flush=True,
    )
    try:
        append_s = append_in_batches(sizes.entries, 0, sizes, run_id, rng)

        started = time.perf_counter()
        head = ledger.sign_head()
        sign_head_s = time.perf_counter() - started
        started = time.perf_counter()
        again = ledger.sign_head()
        sign_again_ms = (time.perf_counter() - started) * 1000
        if again.pk != head.pk:
            raise SystemExit("a second head was signed without new entries")

        sequence = before + 1 + rng.randrange(sizes.entries)
        started = time.perf_counter()
        inclusion = ledger.inclusion_proof(sequence, head.tree_size)
        inclusion_proof_ms = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        included = inclusion.holds(head.root_hash)
        inclusion_verify_ms = (time.perf_counter() - started) * 1000
        if not included:
            raise SystemExit(f"the inclusion proof of entry {sequence} does not hold")

        append_in_batches(sizes.batch, sizes.entries, sizes, run_id, rng)
        second = ledger.sign_head()
        started = time.perf_counter()
        consistency = ledger.consistency_proof(head.tree_size, second.tree_size)
        consistency_proof_ms = (time.perf_counter() - started) * 1000
        started = time.perf_counter()
        consistent = consistency.holds(head.root_hash, second.root_hash)
        consistency_verify_ms = (time.perf_counter() - started) * 1000
        if not consistent:
            raise SystemExit("the consistency proof between the two heads does not hold")

        started = time.perf_counter()
        problems = ledger.verify()
        verify_s = time.perf_counter() - started
        for problem in problems[:10]:
            print(f"  problem: {problem.sentence}", flush=True)

        figures = Figures(
            appended=sizes.entries,
            tree_size=head.tree_size,
            append_s=append_s,
            sign_head_s=sign_head_s,
            sign_again_ms=sign_again_ms,
            proved_sequence=sequence,
            inclusion_hashes=len(inclusion.path),
            inclusion_proof_ms=inclusion_proof_ms,
            inclusion_verify_ms=inclusion_verify_ms,
            second_head_size=second.tree_size,
            consistency_hashes=len(consistency.path),
            consistency_proof_ms=consistency_proof_ms,
            consistency_verify_ms=consistency_verify_ms,
            verify_s=verify_s,
            problems=len(problems),
        )
        report(figures)
    finally:
        removed = remove_after(before, heads_before)
    print(
        "  (bench entries and heads removed)" if removed else "  (bench entries left: append-only)",
        flush=True,
    )
    return figures


def main() -> None:
    prepare()
    from django.test.utils import override_settings

    # DEBUG off, as in production: with it on, Django keeps and formats every statement it runs.
    with override_settings(DEBUG=False):
        run()


if __name__ == "__main__":
    main()
