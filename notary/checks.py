"""The auditor's privacy checks for one organisation and period.

Each check gives a ``CheckResult``; the auditor's page lists them and an attestation states them. What a
check finds is told by access log sequence numbers, staff member ids and ISO weeks: never a dossier number,
a name, a contact detail or a score, and no date finer than the week, since the explanation may be
read by the employer in an attestation.

The ledger is the source wherever it holds the fact (anonymisation runs, agreements, threshold changes,
trajectories opened): it is what Anoniem Garant can verify against its signed heads. The access log, the
deputies, the closed weeks and the live threshold are read through the public functions of the apps that
keep them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from django.db.models import QuerySet
from django.utils import timezone
from django.utils.translation import gettext as _
from django.utils.translation import ngettext

from casefiles import accesslog, assignment
from notary import ledger
from notary.models import LedgerEntry, TreeHead
from scores import queries as score_queries
from scores import reports
from scores.models import MINIMUM_REPORT_THRESHOLD

Kind = LedgerEntry.Kind
# A failed check names at most this many findings; the count says how many there are in all.
LISTED = 20


@dataclass(frozen=True)
class CheckResult:
    """One check: a stable code (for the attestation), its label in the reader's language, whether it
    passed, how many findings it has, and a short explanation with no name, contact detail or score."""

    code: str
    label: str
    passed: bool
    findings: int = 0
    detail: str = ""


def run_checks(
    organisation_id: int, start: dt.date, end: dt.date, *, today: dt.date | None = None
) -> list[CheckResult]:
    """Every privacy check for the organisation over [start, end]."""
    today = today or timezone.localdate()
    looks = accesslog.staff_looks(organisation_id, start=start, end=end)
    return [
        looks_within_assignment(looks),
        nightly_anonymisation(start, end, today=today),
        agreements_first(organisation_id, start, end, looks=looks),
        threshold_never_lowered(organisation_id, start, end, today=today),
        ledger_intact(),
    ]


# --- how findings are written ---


def monday_of(day: dt.date) -> dt.date:
    return day - dt.timedelta(days=day.weekday())


def week_label(day: dt.date) -> str:
    """The ISO week of a day, e.g. "2026-W05": the finest date a check's explanation names."""
    year, week, _weekday = day.isocalendar()
    return f"{year}-W{week:02d}"


def _listed(items: Sequence[str]) -> str:
    shown = ", ".join(items[:LISTED])
    if len(items) > LISTED:
        shown += " " + _("and %(count)d more") % {"count": len(items) - LISTED}
    return shown


def _sentence(findings: Sequence[str]) -> str:
    text = _listed(findings)
    return text[:1].upper() + text[1:] + "."


def _entries(kind: str, **filters: Any) -> QuerySet[LedgerEntry]:
    return LedgerEntry.objects.filter(kind=kind, **filters).order_by("sequence")


# --- a: no look outside an assignment or deputy period ---


def _within_assignment(look: accesslog.Look, periods: list[assignment.DeputyPeriod]) -> bool:
    if look.casemanager_id is not None and look.staff_user_id == look.casemanager_id:
        return True
    return any(
        period.covers(casemanager_id=look.casemanager_id, deputy_id=look.staff_user_id, day=look.day)
        for period in periods
    )


def looks_within_assignment(looks: Sequence[accesslog.Look]) -> CheckResult:
    """Every look at a dossier of the organisation was taken by its casemanager at that moment, or by a
    deputy standing in for that casemanager that day."""
    periods = assignment.deputy_periods({look.staff_user_id for look in looks})
    stray = [look for look in looks if not _within_assignment(look, periods)]
    if stray:
        detail = _(
            "Access log entries by a staff member who was neither the dossier's casemanager nor their "
            "deputy: %(entries)s."
        ) % {"entries": _listed([f"{look.sequence} ({week_label(look.day)})" for look in stray])}
    else:
        detail = ngettext(
            "%(count)d look at a dossier checked: by its casemanager or their deputy.",
            "%(count)d looks at dossiers checked: each by the dossier's casemanager or their deputy.",
            len(looks),
        ) % {"count": len(looks)}
    return CheckResult(
        code="looks_within_assignment",
        label=_("No dossier look outside an assignment or deputy period"),
        passed=not stray,
        findings=len(stray),
        detail=detail,
    )


# --- b: an anonymisation summary for every night ---


def _spans(nights: Sequence[dt.date]) -> list[str]:
    """Consecutive nights written as one span ("2026-10-01 to 2026-10-09"), single nights alone."""
    spans: list[list[dt.date]] = []
    for night in nights:
        if spans and night - spans[-1][-1] == dt.timedelta(days=1):
            spans[-1].append(night)
        else:
            spans.append([night])
    return [
        span[0].isoformat()
        if len(span) == 1
        else _("%(first)s to %(last)s") % {"first": span[0].isoformat(), "last": span[-1].isoformat()}
        for span in spans
    ]


def nightly_anonymisation(start: dt.date, end: dt.date, *, today: dt.date) -> CheckResult:
    """The ledger holds the summary of the nightly anonymisation run of every night of the period that has
    passed (up to yesterday: tonight's run is still to come)."""
    last = min(end, today - dt.timedelta(days=1))
    nights = [start + dt.timedelta(days=n) for n in range((last - start).days + 1)]
    recorded = set()
    if nights:
        for facts in _entries(Kind.ANONYMISATION_RUN, week__gte=monday_of(start), week__lte=last).values_list(
            "facts", flat=True
        ):
            recorded.add(str(facts.get("night", "")))
    missing = [night for night in nights if night.isoformat() not in recorded]
    if not nights:
        detail = _("No night of this period has passed yet.")
    elif missing:
        detail = _("No summary in the ledger for the nights of %(nights)s.") % {
            "nights": _listed(_spans(missing))
        }
    else:
        detail = ngettext(
            "A summary for the %(count)d night of the period.",
            "A summary for each of the %(count)d nights of the period.",
            len(nights),
        ) % {"count": len(nights)}
    return CheckResult(
        code="nightly_anonymisation",
        label=_("An anonymisation summary for every night"),
        passed=not missing,
        findings=len(missing),
        detail=detail,
    )


# --- c: an agreement before every organisation's and casemanager's first processing ---


def _signed_on(facts: dict[str, Any]) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(facts.get("signed_on", "")))
    except ValueError:
        return None


def _agreements(organisation_id: int) -> tuple[dt.date | None, dict[int, dt.date]]:
    """From the ledger: the day the organisation's agreement was signed (its earliest), and each
    casemanager's."""
    organisation: dt.date | None = None
    casemanagers: dict[int, dt.date] = {}
    for entry_organisation, facts in _entries(Kind.AGREEMENT_RECORDED).values_list(
        "organisation_id", "facts"
    ):
        signed_on = _signed_on(facts)
        if signed_on is None:
            continue
        if facts.get("party") == "organisation" and entry_organisation == organisation_id:
            organisation = min(organisation or signed_on, signed_on)
        elif facts.get("party") == "casemanager" and facts.get("casemanager_id") is not None:
            who = int(facts["casemanager_id"])
            casemanagers[who] = min(casemanagers.get(who, signed_on), signed_on)
    return organisation, casemanagers


def first_processing_week(organisation_id: int, start: dt.date, end: dt.date) -> dt.date | None:
    """The first week in the period in which the organisation's employees were processed: people sent a
    weekly link (its closed weeks), or a trajectory opened (the ledger). None when neither happened."""
    invited = score_queries.first_week_invited(organisation_id=organisation_id, since=start, until=end)
    opened = (
        _entries(
            Kind.TRAJECTORY_OPENED, organisation_id=organisation_id, week__gte=monday_of(start), week__lte=end
        )
        .order_by("week")
        .values_list("week", flat=True)
        .first()
    )
    found = [week for week in (invited, opened) if week is not None]
    return min(found) if found else None


def agreements_first(
    organisation_id: int, start: dt.date, end: dt.date, *, looks: Sequence[accesslog.Look]
) -> CheckResult:
    """No processing in the period before its agreement: the organisation's signed in or before the week
    of its first processing, each casemanager's in or before the week of their first look at its dossiers.

    Weeks, not days: the ledger knows the organisation's processing by the week only, and the explanation
    may reach the employer."""
    organisation_signed, casemanagers_signed = _agreements(organisation_id)
    findings: list[str] = []
    first_week = first_processing_week(organisation_id, start, end)
    if first_week is not None:
        if organisation_signed is None:
            findings.append(
                _("the organisation processed from %(week)s without an agreement in the ledger")
                % {"week": week_label(first_week)}
            )
        elif monday_of(organisation_signed) > first_week:
            findings.append(
                _("the organisation processed from %(week)s, before its agreement was signed (%(signed)s)")
                % {"week": week_label(first_week), "signed": week_label(organisation_signed)}
            )
    first_looks: dict[int, dt.date] = {}
    for look in looks:
        first_looks.setdefault(look.staff_user_id, look.day)
    for staff_id, day in sorted(first_looks.items()):
        signed = casemanagers_signed.get(staff_id)
        if signed is None:
            findings.append(
                _("staff member %(id)d looked in %(week)s without an agreement in the ledger")
                % {"id": staff_id, "week": week_label(day)}
            )
        elif signed > day:
            findings.append(
                _("staff member %(id)d looked in %(week)s, before their agreement was signed (%(signed)s)")
                % {"id": staff_id, "week": week_label(day), "signed": week_label(signed)}
            )
    if findings:
        detail = _sentence(findings)
    else:
        detail = ngettext(
            "Agreements recorded before processing: the organisation's and %(count)d casemanager's.",
            "Agreements recorded before processing: the organisation's and %(count)d casemanagers'.",
            len(first_looks),
        ) % {"count": len(first_looks)}
        if first_week is None and not first_looks:
            detail = _("No processing for this organisation in the period.")
    return CheckResult(
        code="agreements_first",
        label=_("An agreement before every organisation's and casemanager's first processing"),
        passed=not findings,
        findings=len(findings),
        detail=detail,
    )


# --- d: no report threshold lowered ---


def _threshold_change(facts: dict[str, Any]) -> tuple[int, int] | None:
    try:
        return int(facts["old"]), int(facts["new"])
    except (KeyError, TypeError, ValueError):
        return None


def _changed_today(organisation_id: int, today: dt.date) -> bool:
    """Whether the live threshold changed today: the ledger takes changes up at night, so it may not hold
    this one yet."""
    changes = reports.setting_changes(organisation_id)
    return bool(changes) and timezone.localdate(changes[0].changed_at) >= today


def threshold_never_lowered(
    organisation_id: int, start: dt.date, end: dt.date, *, today: dt.date
) -> CheckResult:
    """Every change of the organisation's report threshold in the period raised it, and the ledger's
    changes explain the threshold in force now."""
    first_week = monday_of(start)
    findings: list[str] = []
    latest: int | None = None
    changed_in_period = 0
    for week, facts in _entries(Kind.REPORT_SETTING_CHANGED, organisation_id=organisation_id).values_list(
        "week", "facts"
    ):
        change = _threshold_change(facts)
        if change is None:
            continue
        old, new = change
        latest = new
        if first_week <= week <= end:
            changed_in_period += 1
            if new < old:
                findings.append(
                    _("lowered from %(old)d to %(new)d in %(week)s")
                    % {"old": old, "new": new, "week": week_label(week)}
                )
    explained = MINIMUM_REPORT_THRESHOLD if latest is None else latest
    live = reports.threshold_of(organisation_id)
    if live != explained and not _changed_today(organisation_id, today):
        findings.append(
            _("the threshold in force is %(live)d, the ledger's changes lead to %(explained)d")
            % {"live": live, "explained": explained}
        )
    if findings:
        detail = _sentence(findings)
    else:
        detail = ngettext(
            "%(count)d change in the period, none lowered the threshold; %(live)d in force.",
            "%(count)d changes in the period, none lowered the threshold; %(live)d in force.",
            changed_in_period,
        ) % {"count": changed_in_period, "live": live}
    return CheckResult(
        code="threshold_never_lowered",
        label=_("No report threshold lowered"),
        passed=not findings,
        findings=len(findings),
        detail=detail,
    )


# --- e: the ledger's integrity against its last signed head ---


def latest_head() -> TreeHead | None:
    """The last signed tree head: the largest stored (notary.ledger signs them)."""
    return TreeHead.objects.order_by("-tree_size").first()


def ledger_problems() -> list[str] | None:
    """What notary.ledger.verify finds, each problem's sentence; None while the ledger offers no verify (the
    check then only asks for a signed head). Asked through getattr: the verification is the ledger's own
    work on #20 and lands on its own."""
    verify = getattr(ledger, "verify", None)
    if not callable(verify):
        return None
    return [str(getattr(problem, "sentence", None) or problem) for problem in verify()]


def ledger_intact() -> CheckResult:
    """The ledger verifies against its last signed head: every entry as it was appended, none removed or
    slipped in."""
    head = latest_head()
    problems = ledger_problems()
    findings = list(problems or [])
    if head is None:
        findings.insert(0, _("no signed tree head yet"))
    if findings:
        detail = _sentence(findings)
    else:
        assert head is not None
        detail = _("Verified against the signed head of %(size)d entries (key %(fingerprint)s).") % {
            "size": head.tree_size,
            "fingerprint": head.key_fingerprint[:16],
        }
        if problems is None:
            detail = _(
                "A signed head of %(size)d entries exists (key %(fingerprint)s); the entries were not "
                "verified against it."
            ) % {"size": head.tree_size, "fingerprint": head.key_fingerprint[:16]}
    return CheckResult(
        code="ledger_intact",
        label=_("The ledger is intact against its last signed head"),
        passed=not findings,
        findings=len(findings),
        detail=detail,
    )
