"""Processing agreements: recorded with a hash of the document only, and required before processing."""

from __future__ import annotations

import datetime as dt
import hashlib

import pytest
from django.core.exceptions import ValidationError
from django.db import connection
from django.utils import timezone, translation

from participants.agreements import (
    AgreementMissing,
    casemanager_has_signed_agreement,
    has_signed_agreement,
    record_agreement,
    require_casemanager_signed_agreement,
    require_signed_agreement,
)
from participants.models import Organisation, ProcessingAgreement, StaffUser
from tests.conftest import make_organisation

DOCUMENT = b"%PDF-1.7 verwerkersovereenkomst signed by both parties"


@pytest.fixture
def unsigned(db: object) -> Organisation:
    return make_organisation("Transport Oost", "logistiek", signed=False)


def test_recording_keeps_the_hash_of_the_document_and_never_the_document(unsigned: Organisation) -> None:
    agreement = record_agreement(
        organisation=unsigned, signed_on=dt.date(2026, 3, 1), signer="  M. de Vries  ", document=DOCUMENT
    )
    agreement.refresh_from_db()
    assert agreement.document_sha256 == hashlib.sha256(DOCUMENT).hexdigest()
    assert agreement.party == ProcessingAgreement.Party.ORGANISATION
    assert agreement.signer == "M. de Vries"
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT * FROM participants_processingagreement WHERE document_sha256 = %s",
            [agreement.document_sha256],
        )
        raw = " ".join(str(value) for value in cursor.fetchone())
    assert "de Vries" not in raw
    assert "verwerkersovereenkomst" not in raw


def test_an_organisation_without_an_agreement_has_none_until_one_is_recorded(unsigned: Organisation) -> None:
    assert not has_signed_agreement(unsigned)
    record_agreement(
        organisation=unsigned, signed_on=dt.date(2026, 3, 1), signer="M. de Vries", document=DOCUMENT
    )
    assert has_signed_agreement(unsigned)
    require_signed_agreement(unsigned)


def test_another_organisations_agreement_does_not_count(
    unsigned: Organisation, organisation: Organisation
) -> None:
    assert has_signed_agreement(organisation)
    assert not has_signed_agreement(unsigned)


def test_an_unsaved_organisation_has_no_agreement() -> None:
    assert not has_signed_agreement(Organisation(name="Nieuw", sector="zorg"))


def test_require_signed_agreement_raises_a_clear_translatable_message(unsigned: Organisation) -> None:
    with translation.override("en"), pytest.raises(AgreementMissing) as raised:
        require_signed_agreement(unsigned)
    assert "No signed processing agreement is recorded for this organisation" in str(raised.value)
    assert raised.value.message == str(raised.value)


def test_casemanager_agreement_is_their_own(casemanager: StaffUser, other_employer: StaffUser) -> None:
    assert not casemanager_has_signed_agreement(casemanager)
    with translation.override("en"), pytest.raises(AgreementMissing) as raised:
        require_casemanager_signed_agreement(casemanager)
    assert "this casemanager" in str(raised.value)
    record_agreement(casemanager=casemanager, signed_on=dt.date(2026, 2, 1), signer="Anna", document=DOCUMENT)
    assert casemanager_has_signed_agreement(casemanager)
    require_casemanager_signed_agreement(casemanager)


def test_an_organisations_agreement_does_not_cover_a_casemanager(
    organisation: Organisation, casemanager: StaffUser
) -> None:
    assert has_signed_agreement(organisation)
    assert not casemanager_has_signed_agreement(casemanager)


def test_only_a_casemanager_signs_a_casemanager_agreement(employer: StaffUser) -> None:
    with translation.override("en"), pytest.raises(ValidationError) as raised:
        record_agreement(casemanager=employer, signed_on=dt.date(2026, 2, 1), signer="HR", document=DOCUMENT)
    assert "Only a casemanager" in str(raised.value)
    assert not ProcessingAgreement.objects.filter(casemanager=employer).exists()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"signer": "   "}, "Enter the name of the person who signed."),
        ({"signer": "x" * 201}, "longer than 200 characters"),
        ({"document": b""}, "The signed document is empty."),
        ({"signed_on": "tomorrow"}, "cannot be signed on a date in the future"),
        ({"both": True}, "not both"),
        ({"neither": True}, "not both"),
    ],
)
def test_a_bad_agreement_is_refused_and_nothing_is_recorded(
    unsigned: Organisation, casemanager: StaffUser, kwargs: dict, message: str
) -> None:
    arguments: dict = {
        "organisation": unsigned,
        "signed_on": dt.date(2026, 3, 1),
        "signer": "M. de Vries",
        "document": DOCUMENT,
    }
    if kwargs.pop("both", False):
        arguments["casemanager"] = casemanager
    if kwargs.pop("neither", False):
        arguments["organisation"] = None
    if kwargs.get("signed_on") == "tomorrow":
        kwargs["signed_on"] = timezone.localdate() + dt.timedelta(days=1)
    arguments.update(kwargs)
    before = ProcessingAgreement.objects.count()
    with translation.override("en"), pytest.raises(ValidationError) as raised:
        record_agreement(**arguments)
    assert any(message in text for text in raised.value.messages)
    assert ProcessingAgreement.objects.count() == before
    assert not has_signed_agreement(unsigned)
