"""Migration 0015: participants get the hashes they are listed under; unpaired departed hashes still work."""

from __future__ import annotations

import uuid

import pytest
from django.db import connections
from django.db.migrations.executor import MigrationExecutor

from participants.importing import import_address_list
from participants.invitations import listed_hashes
from participants.models import DepartedContact, Organisation, Participant, StaffUser
from tests.conftest import ALL_DATABASES
from tests.participants.people import make_participant

BEFORE = [("participants", "0014_last_imported_list_as_keyed_hashes")]
AFTER = [("participants", "0015_listed_hashes_and_paired_departed_contacts")]


@pytest.mark.integration
@pytest.mark.django_db(databases=ALL_DATABASES, transaction=True)
def test_the_migration_lists_participants_under_their_contacts_and_keeps_unpaired_departed_hashes(
    organisation: Organisation, employer: StaffUser
) -> None:
    jan = make_participant(organisation, email="jan@werk.example", mobile="+31611111111")
    # Someone who left before the hashes were paired: one row per hash, of no recorded kind.
    legacy_email, _unused = listed_hashes(
        organisation_id=organisation.pk, email="piet@werk.example", mobile=None
    )
    executor = MigrationExecutor(connections["default"])
    executor.migrate(BEFORE)
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute(
                "INSERT INTO participants_departedcontact (id, organisation_id, contact_hash) "
                "VALUES (%s, %s, %s)",
                [uuid.uuid4(), organisation.pk, legacy_email],
            )
    finally:
        executor = MigrationExecutor(connections["default"])
        executor.loader.build_graph()
        executor.migrate(AFTER)
    try:
        jan = Participant.objects.get(pk=jan.pk)
        assert (jan.listed_email_hash, jan.listed_mobile_hash) == listed_hashes(
            organisation_id=organisation.pk, email="jan@werk.example", mobile="+31611111111"
        )
        (legacy,) = DepartedContact.objects.all()
        assert legacy.email_hash == legacy.mobile_hash == legacy_email
    finally:
        executor = MigrationExecutor(connections["default"])
        executor.loader.build_graph()
        executor.migrate(executor.loader.graph.leaf_nodes())

    data = (
        "naam;e-mail;mobiel;afdeling\r\n"
        "Jan;jan@werk.example;0611111111;IT\r\n"
        "Piet;piet@werk.example;0644444444;IT\r\n"
    )
    result = import_address_list(organisation=organisation, data=data.encode(), full_list=True, by=employer)
    # Jan is found under what he was listed with, Piet is still recognised as departed: nobody is new.
    assert (result.created, result.updated + result.unchanged) == (0, 2)
