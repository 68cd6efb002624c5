"""Codes and account links that name their participant only sealed (participants/references.py)."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from django.db import connections
from django.utils import timezone

from participants import account, verification
from participants.models import AccountLink, Organisation, VerificationCode
from participants.references import HOUR, hour_index, hour_indexes
from preventicons import crypto
from preventicons.dbrouter import ALIASES
from preventicons.fields import Sealed
from tests.conftest import run_on_embedded_default
from tests.scores.people import make_participant

pytestmark = pytest.mark.django_db


def test_a_code_row_holds_no_participant_id_and_an_index_that_changes_every_hour(
    organisation: Organisation,
) -> None:
    person = make_participant(organisation)
    verification.issue_codes(participant=person, purpose=VerificationCode.Purpose.CHANGE)
    with connections["default"].cursor() as cursor:
        cursor.execute("SELECT * FROM participants_verificationcode")
        rows = cursor.fetchall()
    assert len(rows) == 2
    assert not any(
        str(person.pk) in str(value) or person.pk.hex in str(value) for row in rows for value in row
    )
    moment = timezone.now()
    assert hour_index(person.pk, moment) != hour_index(person.pk, moment + HOUR)
    assert hour_index(person.pk, moment) != hour_index(make_participant(organisation).pk, moment)
    # The application finds them by the index of this hour and the one before, and opens the reference.
    found = VerificationCode.objects.filter(participant_index__in=hour_indexes(person.pk, moment))
    assert {code.participant_id for code in found} == {str(person.pk)}


def test_a_reference_copied_to_another_row_does_not_open(organisation: Organisation) -> None:
    person = make_participant(organisation)
    first = AccountLink.objects.create(
        participant_ref=str(person.pk),
        token_hash="a" * 64,
        expires_at=timezone.now() + dt.timedelta(minutes=30),
    )
    second = AccountLink.objects.create(
        participant_ref=str(make_participant(organisation).pk),
        token_hash="b" * 64,
        expires_at=timezone.now() + dt.timedelta(minutes=30),
    )
    sealed = AccountLink.objects.values_list("participant_ref", flat=True).get(pk=first.pk)
    AccountLink.objects.filter(pk=second.pk).update(participant_ref=Sealed(str(sealed)))
    with pytest.raises(crypto.DecryptionError):
        _ = AccountLink.objects.get(pk=second.pk).participant_id


def test_an_account_link_expires_on_a_quarter_hour_and_no_sooner_than_its_lifetime(
    organisation: Organisation,
) -> None:
    person = make_participant(organisation)
    before = timezone.now()
    assert account.send_account_links(request_id="r1", email=person.email or "") == 1
    link = AccountLink.objects.get()
    assert link.expires_at >= before + account.ACCOUNT_LINK_LIFETIME
    assert (
        link.expires_at.minute % 15 == 0 and link.expires_at.second == 0 and link.expires_at.microsecond == 0
    )
    assert link.participant_id == str(person.pk)


SQLITE_SCRIPT = """
import django
django.setup()
from participants import account, verification
from participants.models import AccountLink, Organisation, Participant, VerificationCode
from preventicons import crypto
from preventicons.fields import Sealed
organisation = Organisation.objects.create(name="Embedded", sector="zorg")
person = Participant(organisation=organisation, status="active", name="B", email="b@x.nl",
                     email_index=crypto.blind_index_email("b@x.nl"), mobile="+31612345678",
                     pseudonym=crypto.new_pseudonym())
person.save()
verification.issue_codes(participant=person, purpose="stop", channels=("sms",))
outcome = verification.verify_code(participant=person, purpose="stop", channel="sms", code="000000")
sent = account.send_account_links(request_id="r", email="b@x.nl")
link = AccountLink.objects.get()
opened = account.use_account_link(link_id=str(link.pk))
account.stop_participation(participant=person)
print(VerificationCode.objects.count() == 0 and sent == 1, outcome.status, opened == person,
      AccountLink.objects.count(), Participant.objects.get(pk=person.pk).status)
"""


@pytest.mark.integration
@pytest.mark.django_db(databases=[])
def test_codes_links_and_a_stop_work_on_the_embedded_sqlite_default(tmp_path: Path) -> None:
    for alias in ALIASES:
        run_on_embedded_default(
            "manage.py", "migrate", f"--database={alias}", "--no-input", "-v0", var_dir=tmp_path
        )
    printed = run_on_embedded_default("-c", SQLITE_SCRIPT, var_dir=tmp_path)

    assert printed.split() == ["True", "wrong", "True", "0", "stopped"]
