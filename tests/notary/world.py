"""Ledger facts for the attestation tests, appended as notary.feed and the sign-off batch append them (the
facts each kind carries: notary/audit.py), and the auditor's engagement."""

from __future__ import annotations

import datetime as dt
import uuid

from notary import ledger
from notary.ledger import Fact
from notary.models import Engagement
from notary.references import reference_for

Kind = ledger.Kind
# A quarter that has ended, and its Mondays: what the tests attest.
Q3_START = dt.date(2026, 7, 1)
Q3_END = dt.date(2026, 9, 30)
BEFORE_Q3 = dt.date(2026, 6, 22)  # a Monday in Q2
IN_Q3 = [dt.date(2026, 7, 6) + dt.timedelta(weeks=n) for n in range(13)]  # 6 Jul .. 28 Sep
AFTER_Q3 = dt.date(2026, 10, 5)


def engage(auditor_id: int, organisation_id: int) -> Engagement:
    return Engagement.objects.create(
        auditor_id=auditor_id, organisation_id=organisation_id, engaged_on=dt.date(2026, 1, 5)
    )


def record_trajectory(
    organisation_id: int,
    *,
    opened: dt.date,
    sessions: tuple[dt.date, ...] = (),
    completed: dt.date | None = None,
    outcome: str = "",
    signed_off: bool | None = None,
    signed_off_week: dt.date | None = None,
) -> str:
    """One trajectory's life in the ledger; its reference."""
    trajectory = uuid.uuid4()
    reference = reference_for(trajectory)
    facts = [
        Fact(
            Kind.TRAJECTORY_OPENED,
            f"trajectory_opened:{trajectory}",
            opened,
            facts={"kind": "coaching"},
            reference=reference,
            organisation_id=organisation_id,
        )
    ]
    facts += [
        Fact(
            Kind.SESSION_HELD,
            f"session_held:{uuid.uuid4()}",
            week,
            reference=reference,
            organisation_id=organisation_id,
        )
        for week in sessions
    ]
    if completed is not None:
        facts.append(
            Fact(
                Kind.TRAJECTORY_COMPLETED,
                f"trajectory_completed:{trajectory}",
                completed,
                facts={"outcome": outcome, "sessions_held": len(sessions)},
                reference=reference,
                organisation_id=organisation_id,
            )
        )
    if signed_off is not None:
        facts.append(
            Fact(
                Kind.SIGNED_OFF,
                f"signed_off:{reference}",
                signed_off_week or completed or opened,
                facts={"took_place": signed_off},
                reference=reference,
                organisation_id=organisation_id,
            )
        )
    ledger.append_many(facts)
    return reference
