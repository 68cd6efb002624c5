"""Attestations: Anoniem Garant's signed statement to an employer about one calendar period.

The statement says, for one organisation and one calendar month, quarter or year: how many trajectories
started and how many completed in it, the measured outcome of each completed one under its opaque reference
only (the reference the invoice lines carry), how many qualify for the guarantee, how many the participant
signed off, which privacy checks passed, and the ledger's tree head it rests on. It holds no name but the
organisation's own, no contact detail, score or note text, and no date but the period's first and last day:
not even the day it was issued, which the employer's list shows beside it.

**Which week counts in which period.** The ledger knows a trajectory only by weeks (their Mondays). A
trajectory counts as started (or completed) in the period its opening (or completion) week's Monday falls
in, so two adjoining periods never both count it.

**The guarantee.** A trajectory qualifies when it was completed in the period and its measured outcome is
"not improved": the guarantee pays out when the help did not help. "Not measurable" does not qualify: too
few weekly answers around it to say, which is not the same as no improvement (casefiles.outcome).

**The file.** One JSON document: ``{"format": ..., "signature": ..., "statement": {...}}``, written in the
canonical form (sorted keys, no spaces, UTF-8), as the statement itself is when signed. In that form every
single changed byte either breaks the JSON or changes what it says, and the signature's base64 must be
exactly the one encoding of its 64 bytes, so a changed byte anywhere fails. The statement names the
fingerprint of the key that signed it for the reader, but a verifier checks it against the key it already
knows (ours, or one given on the command line), never against a key taken from the file.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from django.db import connections, transaction
from django.utils import timezone, translation
from django.utils.translation import gettext as _

from notary import audit, checks, ledger, signing
from notary.models import Attestation, Engagement, LedgerEntry
from participants import auditors
from preventicons.dbrouter import CASEFILES

ISSUER = "Anoniem Garant"
FORMAT = "preventicons/anoniem-garant-attestation/1"
GUARANTEE_RULE = "completed in the period with the measured outcome not improved"
# What a verifier accepts at most: a statement lists one short line per completed trajectory, so even a large
# organisation's year stays far below this.
MAX_FILE_BYTES = 512 * 1024
# The outcomes as the statement words them (the ledger's codes, spelled for a human reader).
OUTCOME_WORDS = {"improved": "improved", "not_improved": "not improved", "not_measurable": "not measurable"}
NOT_IMPROVED = OUTCOME_WORDS["not_improved"]
# One advisory lock key for issuing ("pvATTEST" as bytes): two parallel submits issue one attestation.
ISSUE_LOCK = 0x7076_4154_5445_5354


class AttestationRefused(Exception):
    """Nothing was issued; the message says why, in the reader's language."""


# --- the period ---


def period_length(start: dt.date, end: dt.date) -> str:
    """ "quarter" or "year" for a calendar period from ``start`` to ``end`` (both included); ValueError for
    anything else. Not a month: the employer knows who was away when, and a month's statement with one
    trajectory started, or one completed "not improved", would point at one person; nor a week or a day.
    (The auditor's own pages read months; only what reaches the employer is per quarter or year.)"""
    if start.day != 1:
        raise ValueError("a period starts on the first day of a month")
    following = end + dt.timedelta(days=1)
    if following.day != 1:
        raise ValueError("a period ends on the last day of a month")
    months = (following.year - start.year) * 12 + following.month - start.month
    if months == 3 and start.month in (1, 4, 7, 10):
        return "quarter"
    if months == 12 and start.month == 1:
        return "year"
    raise ValueError("a period is a calendar quarter or year")


def period_key(start: dt.date, end: dt.date) -> str:
    """The period as the auditor's pages name it: ``2026``, ``2026-Q3`` or ``2026-07``."""
    length = period_length(start, end)
    if length == "year":
        return f"{start.year}"
    if length == "quarter":
        return f"{start.year}-Q{(start.month - 1) // 3 + 1}"
    return f"{start.year}-{start.month:02d}"


@dataclass(frozen=True)
class CalendarPeriod:
    """A period to offer the auditor: its first and last day and how people write it."""

    start: dt.date
    end: dt.date

    @property
    def key(self) -> str:
        return period_key(self.start, self.end)

    @property
    def label(self) -> str:
        return self.key


def ended_periods(today: dt.date) -> list[CalendarPeriod]:
    """The last ended quarter and year before ``today``: what an auditor usually attests."""
    this_month = today.replace(day=1)
    quarter_start = this_month.replace(month=3 * ((today.month - 1) // 3) + 1)
    last_quarter_end = quarter_start - dt.timedelta(days=1)
    last_quarter_start = last_quarter_end.replace(day=1, month=last_quarter_end.month - 2)
    return [
        CalendarPeriod(last_quarter_start, last_quarter_end),
        CalendarPeriod(dt.date(today.year - 1, 1, 1), dt.date(today.year - 1, 12, 31)),
    ]


# --- the statement ---


def canonical(value: Mapping[str, Any]) -> bytes:
    """The one byte form of a statement or file: sorted keys, no spaces, UTF-8."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def _ledger_head() -> dict[str, Any]:
    """The tree head the statement rests on: a freshly signed head when the ledger can sign one
    (notary.ledger.sign_head, from the ledger's own work on #20), else only the ledger's size."""
    sign_head = getattr(ledger, "sign_head", None)
    if callable(sign_head):
        head = sign_head()
        return {"tree_size": head.tree_size, "root_hash": head.root_hash, "signed_head": True}
    return {"tree_size": LedgerEntry.objects.count(), "root_hash": None, "signed_head": False}


def _in(week: dt.date | None, start: dt.date, end: dt.date) -> bool:
    return week is not None and start <= week <= end


def build(organisation_id: int, period_start: dt.date, period_end: dt.date) -> dict[str, Any]:
    """The statement for the organisation and calendar period, from the ledger and the privacy checks.

    ValueError for a period that is not a calendar month, quarter or year, or an unknown organisation.
    """
    length = period_length(period_start, period_end)
    name = auditors.organisation_names([organisation_id]).get(organisation_id)
    if name is None:
        raise ValueError(f"no organisation {organisation_id}")
    head = _ledger_head()
    records = audit.trajectories(organisation_id, period_start, period_end)
    started = [record for record in records if _in(record.opened_week, period_start, period_end)]
    completed = [record for record in records if _in(record.completed_week, period_start, period_end)]
    outcomes = {
        record.reference: OUTCOME_WORDS.get(record.outcome, OUTCOME_WORDS["not_measurable"])
        for record in completed
    }
    # The checks' labels in English whatever the auditor's language: the statement is one text for everyone.
    # Their explanations stay out: they name weeks, finer than the period.
    with translation.override("en"):
        results = checks.run_checks(organisation_id, period_start, period_end)
    return {
        "format": FORMAT,
        "issuer": ISSUER,
        "organisation": {"id": organisation_id, "name": name},
        "period": {
            "length": length,
            "first_day": period_start.isoformat(),
            "last_day": period_end.isoformat(),
        },
        "trajectories": {
            "started": len(started),
            "completed": len(completed),
            # A dict: written with sorted keys, so the order of the references says nothing.
            "outcomes": outcomes,
            "qualifying_for_guarantee": sum(1 for word in outcomes.values() if word == NOT_IMPROVED),
            "guarantee_rule": GUARANTEE_RULE,
            "signed_off_by_participant": sum(1 for record in completed if record.took_place is True),
            "denied_by_participant": sum(1 for record in completed if record.took_place is False),
        },
        "privacy_checks": [
            {
                "code": result.code,
                "label": str(result.label),
                "passed": result.passed,
                "findings": result.findings,
            }
            for result in results
        ],
        "privacy_checks_passed": all(result.passed for result in results),
        "ledger": head,
        "key_fingerprint": signing.fingerprint(),
    }


# --- issuing ---


def is_engaged(*, auditor_id: int, organisation_id: int) -> bool:
    return Engagement.objects.filter(auditor_id=auditor_id, organisation_id=organisation_id).exists()


def _lock_for_issue() -> None:
    """Issues one after the other: two parallel submits of the same statement store it once. SQLite's
    transactions begin IMMEDIATE (the one write lock)."""
    connection = connections[CASEFILES]
    if connection.vendor == "postgresql":
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ISSUE_LOCK])


def issue(
    *,
    organisation_id: int,
    period_start: dt.date,
    period_end: dt.date,
    auditor_id: int,
    today: dt.date | None = None,
) -> tuple[Attestation, bool]:
    """Sign and store the statement; (the attestation, whether it is new).

    The same statement issued again (same organisation and period, same ledger head and checks) gives the
    attestation already issued: a double submit issues one. A statement that differs (the ledger grew, a
    check changed) is a new attestation beside the old one. AttestationRefused for an auditor the
    organisation did not engage, a period that is not a calendar month, quarter or year, or one not ended.
    """
    today = today or timezone.localdate()
    if not is_engaged(auditor_id=auditor_id, organisation_id=organisation_id):
        raise AttestationRefused(_("This organisation has not engaged you."))
    try:
        period_length(period_start, period_end)
    except ValueError:
        raise AttestationRefused(_("An attestation covers a calendar quarter or year.")) from None
    if period_end >= today:
        raise AttestationRefused(
            _("This period has not ended yet: an attestation can be issued from %(day)s.")
            % {"day": (period_end + dt.timedelta(days=1)).isoformat()}
        )
    with transaction.atomic(using=CASEFILES):
        _lock_for_issue()
        document = canonical(build(organisation_id, period_start, period_end)).decode()
        existing = Attestation.objects.filter(
            organisation_id=organisation_id,
            period_start=period_start,
            period_end=period_end,
            document=document,
        ).first()
        if existing is not None:
            return existing, False
        attestation = Attestation.objects.create(
            organisation_id=organisation_id,
            period_start=period_start,
            period_end=period_end,
            document=document,
            signature=signing.sign(document.encode()),
            issued_by_id=auditor_id,
            issued_on=today,
        )
    return attestation, True


def issued_for(organisation_id: int) -> list[Attestation]:
    """The organisation's attestations, the latest period first, the latest issued first within it."""
    return list(
        Attestation.objects.filter(organisation_id=organisation_id).order_by(
            "-period_end", "-period_start", "-issued_on", "-pk"
        )
    )


def file_of(attestation: Attestation) -> bytes:
    """The downloadable file: the statement and its signature in one canonical JSON document."""
    statement = json.loads(attestation.document)
    return canonical({"format": FORMAT, "signature": attestation.signature, "statement": statement}) + b"\n"


def file_name(attestation: Attestation) -> str:
    key = period_key(attestation.period_start, attestation.period_end)
    return f"attestation-{attestation.organisation_id}-{key}-{str(attestation.pk)[:8]}.json"


def statement_of(attestation: Attestation) -> dict[str, Any]:
    statement: dict[str, Any] = json.loads(attestation.document)
    return statement


# --- verifying ---


@dataclass(frozen=True)
class Verdict:
    """Whether a file holds a statement signed by the key we verify with; why not, in plain words."""

    valid: bool
    reason: str
    fingerprint: str
    statement: dict[str, Any] | None = None


class _Unreadable(ValueError):
    pass


def _strict_object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are all different: with a key twice, a reader and a parser could each believe
    a different one."""
    found: dict[str, Any] = {}
    for key, value in pairs:
        if key in found:
            raise _Unreadable(_("the key %(key)s appears twice") % {"key": json.dumps(key)})
        found[key] = value
    return found


def _refuse_constant(name: str) -> None:
    raise _Unreadable(_("%(name)s is not a number a statement holds") % {"name": name})


def _parse(data: bytes) -> dict[str, Any]:
    if len(data) > MAX_FILE_BYTES:
        raise _Unreadable(_("the file is larger than %(size)d KB") % {"size": MAX_FILE_BYTES // 1024})
    try:
        text = data.decode("utf-8")
        parsed = json.loads(text, object_pairs_hook=_strict_object, parse_constant=_refuse_constant)
    except UnicodeDecodeError:
        raise _Unreadable(_("the file is not UTF-8 text")) from None
    except json.JSONDecodeError as error:
        raise _Unreadable(
            _("the file is not JSON: %(error)s at character %(position)d")
            % {"error": error.msg, "position": error.pos}
        ) from None
    except (RecursionError, ValueError) as error:
        if isinstance(error, _Unreadable):
            raise
        # Nested deeper than the parser goes, or a number longer than Python reads: hostile, not a 500.
        raise _Unreadable(_("the file is nested too deeply or holds a number too long")) from None
    if not isinstance(parsed, dict) or set(parsed) != {"format", "signature", "statement"}:
        raise _Unreadable(_("the file does not hold exactly a format, a signature and a statement"))
    if parsed["format"] != FORMAT:
        raise _Unreadable(_("the file is not an Anoniem Garant attestation of a format we know"))
    if not isinstance(parsed["statement"], dict) or not isinstance(parsed["signature"], str):
        raise _Unreadable(_("the statement or the signature is missing"))
    return parsed


def _canonical_signature(signature: str) -> bool:
    """Whether the base64 is the one encoding of 64 bytes: other spellings of the same bytes (the unused
    bits of the last character) would let a changed byte pass."""
    try:
        raw = base64.b64decode(signature, validate=True)
    except (binascii.Error, ValueError):
        return False
    return len(raw) == 64 and base64.b64encode(raw).decode("ascii") == signature


def verify_file(data: bytes, public_key: Ed25519PublicKey | None = None) -> Verdict:
    """Check an attestation file against ``public_key`` (ours when None), never a key the file names."""
    fingerprint = signing.fingerprint(public_key)
    try:
        parsed = _parse(data)
    except _Unreadable as error:
        return Verdict(
            False, _("Not valid: this is not a readable attestation (%(why)s).") % {"why": error}, fingerprint
        )
    statement: dict[str, Any] = parsed["statement"]
    signature: str = parsed["signature"]
    try:
        as_issued = canonical(parsed)
    except ValueError:  # a lone surrogate escaped in a string: no UTF-8 spelling, so never ours
        as_issued = b""
    if data.removesuffix(b"\n") != as_issued:
        # The signature covers the statement's canonical form; a file spelled otherwise (spaces, keys in
        # another order, escapes) would read the same, but "a changed byte fails" means every byte counts.
        return Verdict(
            False,
            _("Not valid: the file is not byte for byte as issued (spacing, order or spelling changed)."),
            fingerprint,
        )
    if not _canonical_signature(signature):
        return Verdict(
            False, _("Not valid: the signature is not a well-formed Ed25519 signature."), fingerprint
        )
    if not signing.signature_holds(canonical(statement), signature, public_key):
        return Verdict(
            False,
            _(
                "Not valid: the signature does not hold. The statement was changed after it was signed, or "
                "it was not signed by the key with fingerprint %(fingerprint)s."
            )
            % {"fingerprint": fingerprint},
            fingerprint,
        )
    if statement.get("key_fingerprint") != fingerprint or statement.get("format") != FORMAT:
        return Verdict(
            False,
            _("Not valid: the statement names another key or format than the one it was verified with."),
            fingerprint,
        )
    return Verdict(
        True,
        _("Valid: signed by %(issuer)s with the key with fingerprint %(fingerprint)s, and unchanged since.")
        % {"issuer": ISSUER, "fingerprint": fingerprint},
        fingerprint,
        statement,
    )


def verify_against_ledger(data: bytes) -> Verdict:
    """Check an attestation file as ``verify_file`` does with our key, and then that this notary's ledger
    holds the signed tree head the statement rests on (``ledger.holds_head``), as ``verify_ledger
    --attestation`` requires.

    A signature alone proves the statement was signed, not that the ledger it rests on is still the one it
    was signed over: a ledger cut back (or cut back and appended to again) after the attestation was issued
    keeps signing new statements while the facts this one counted are gone. So such a file is not valid,
    said in words of its own, and its statement is not shown as if it were true. The reason names only the
    head's size, which the file itself holds: nothing of the ledger as it stands now.
    """
    verdict = verify_file(data)
    if not verdict.valid or verdict.statement is None:
        return verdict
    head = ledger.attested_head(verdict.statement)
    # A statement issued before heads were signed names none: there is nothing to hold it against.
    if head is None or ledger.holds_head(head):
        return verdict
    return Verdict(
        False,
        _(
            "Not valid: the signature holds, but this notary's ledger does not hold the signed tree head of "
            "%(size)d entries that the attestation rests on. The ledger was cut back or rewritten after it "
            "was issued, or the attestation rests on another ledger."
        )
        % {"size": head.tree_size},
        verdict.fingerprint,
    )


def public_key_base64(key: Ed25519PublicKey | None = None) -> str:
    return base64.b64encode(signing.public_key_bytes(key)).decode("ascii")
