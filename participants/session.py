"""The participant's short-lived session: reached through a link and a code, never through a password.

An account opens only after both factors in one session (DESIGN.md "Nothing personal behind one factor"):
the e-mailed link (its first factor, kept here as a pending step) and then a fresh code by SMS. Whoever reads
a work mailbox holds only the first. Only the participant's random id is kept in the session, and only for a
short while: the account closes itself after settings.PARTICIPANT_SESSION_SECONDS (15 minutes by default)
without a request, so whoever picks up an unattended phone or work computer finds it closed again.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase
from django.http import HttpRequest

from participants import verification
from participants.models import Participant

# Set only once both factors are proven in this session.
SESSION_KEY = "participant_id"
# When this session last showed the account (epoch seconds): the idle timeout is counted from it.
SESSION_SEEN_AT = "participant_seen_at"
# The first factor: the participant whose e-mailed link this session used, and when (epoch seconds).
SESSION_LINK_STEP = "participant_link_step"
# How long the first factor waits for the second (a code, resent if need be): as long as the link lived.
LINK_STEP_SECONDS = 30 * 60


def bind_participant_session(session: SessionBase, participant: Participant) -> None:
    """Mark ``session`` as this participant's, both factors proven, from now (tests use it directly)."""
    session.pop(SESSION_LINK_STEP, None)
    session[SESSION_KEY] = str(participant.pk)
    session[SESSION_SEEN_AT] = int(time.time())
    session.set_expiry(settings.PARTICIPANT_SESSION_SECONDS)


def start_participant_session(request: HttpRequest, participant: Participant) -> None:
    """Open the account on this browser: call only once both factors are proven in this session.

    A fresh session key, against fixation.
    """
    request.session.cycle_key()
    bind_participant_session(request.session, participant)


def end_participant_session(request: HttpRequest) -> None:
    request.session.flush()


def current_participant(request: HttpRequest) -> Participant | None:
    """The participant whose session this is, both factors proven, not idle too long, not stopped.

    Each call counts as activity: it restarts the idle timeout.
    """
    participant_id = request.session.get(SESSION_KEY)
    if not participant_id:
        return None
    seen_at = request.session.get(SESSION_SEEN_AT)
    now = int(time.time())
    # Fails closed: a session without a time (or from the future) is as good as an expired one.
    if not isinstance(seen_at, int) or not 0 <= now - seen_at <= settings.PARTICIPANT_SESSION_SECONDS:
        request.session.flush()
        return None
    participant = Participant.objects.filter(pk=participant_id).first()
    if participant is None or participant.status in (Participant.Status.STOPPED, Participant.Status.DECLINED):
        request.session.flush()
        return None
    request.session[SESSION_SEEN_AT] = now
    request.session.set_expiry(settings.PARTICIPANT_SESSION_SECONDS)
    return participant


@dataclass(frozen=True)
class LinkStep:
    """The first factor this session holds: an e-mailed account link, opened and confirmed.

    ``participant`` is None for a link that opens nothing (a decoy, an unknown, used or expired token, or
    someone who stopped since): such a step reads exactly like a real one, and no code ever opens it.
    ``link`` is a keyed hash of the link's token, for pacing its SMS codes per link.
    """

    participant: Participant | None
    link: str


def start_link_step(request: HttpRequest, participant: Participant | None, *, link: str) -> None:
    """Record the first factor (their e-mailed link, just used up) in a fresh session: the code comes next.

    The same for a link that opens nothing (``participant`` None): the same session keys and, from here on,
    the same pages, so whoever opened it learns only on the phone whether it was real. Whatever account this
    browser had open closes: one session holds one participant's steps.
    """
    request.session.flush()
    now = int(time.time())
    request.session[SESSION_LINK_STEP] = {
        "participant": str(participant.pk) if participant is not None else "",
        "link": link,
        "at": now,
        "code_at": now,
        "failures": 0,
    }
    request.session.set_expiry(LINK_STEP_SECONDS)


def _step_data(request: HttpRequest) -> dict[str, Any] | None:
    step = request.session.get(SESSION_LINK_STEP)
    if not isinstance(step, dict):
        return None
    at = step.get("at")
    if (
        not isinstance(at, int)
        or not isinstance(step.get("participant"), str)
        or not isinstance(step.get("link"), str)
        or not 0 <= int(time.time()) - at <= LINK_STEP_SECONDS
    ):
        request.session.pop(SESSION_LINK_STEP, None)
        return None
    return step


def holds_link_step(request: HttpRequest) -> bool:
    """Whether this session holds a link step that may still wait for its SMS code, from the session only.

    For the pages that only need to know (the code page's form, an account page sending the step back to it):
    link_step reads the participant row of a real link and nothing for a decoy, and such a page is not under
    the link-step floor (preventicons.middleware), so the read would time which link was real (review 12).
    """
    return _step_data(request) is not None


def link_step(request: HttpRequest) -> LinkStep | None:
    """The link step this session holds, while it may still wait for the SMS code; None without one."""
    step = _step_data(request)
    if step is None:
        return None
    participant = None
    if step["participant"]:
        participant = Participant.objects.filter(pk=step["participant"]).first()
        if participant is not None and participant.status in (
            Participant.Status.STOPPED,
            Participant.Status.DECLINED,
        ):
            participant = None
    return LinkStep(participant=participant, link=step["link"])


def link_step_participant(request: HttpRequest) -> Participant | None:
    """The participant whose link this session used, while it may still wait for the SMS code."""
    step = link_step(request)
    return step.participant if step is not None else None


def restart_link_code(request: HttpRequest) -> None:
    """A new code was (or, for a link that opens nothing, seemed to be) sent: its clock and tries restart."""
    step = _step_data(request)
    if step is not None:
        request.session[SESSION_LINK_STEP] = {**step, "code_at": int(time.time()), "failures": 0}


def count_wrong_code(request: HttpRequest) -> verification.VerifyOutcome:
    """Count a refused code in this session; what to tell the person, alike for every link.

    The answer follows the rules of participants.verification (expiry after VERIFICATION_CODE_MINUTES,
    MAX_FAILURES_PER_CODE tries) but is counted here, per session and link, so a link that opens nothing
    answers exactly as a valid one does to a wrong code: the database's own count (which the real code's
    lock rests on) could differ, for instance under a person's hourly budget, and that would tell.
    """
    step = _step_data(request)
    if step is None:
        return verification.VerifyOutcome(verification.VerifyStatus.NONE)
    now = int(time.time())
    if now - int(step.get("code_at", 0)) >= settings.VERIFICATION_CODE_MINUTES * 60:
        return verification.VerifyOutcome(verification.VerifyStatus.EXPIRED)
    failures = int(step.get("failures", 0))
    if failures >= verification.MAX_FAILURES_PER_CODE:
        return verification.VerifyOutcome(verification.VerifyStatus.LOCKED)
    failures += 1
    request.session[SESSION_LINK_STEP] = {**step, "failures": failures}
    tries_left = verification.MAX_FAILURES_PER_CODE - failures
    if tries_left <= 0:
        return verification.VerifyOutcome(verification.VerifyStatus.LOCKED)
    return verification.VerifyOutcome(verification.VerifyStatus.WRONG, tries_left=tries_left)
