"""The import's preview: what it will do, confirmed before anything is written, and nothing it tells the
employer depends on who took part, stopped or declined (participants/listpreview.py)."""

from __future__ import annotations

import base64
import re
import zlib

import pytest
from django.test import Client

from participants.account import stop_participation
from participants.importing import import_address_list
from participants.models import Department, ListedEntry, Organisation, Participant, StaffUser
from tests.conftest import ALL_DATABASES
from tests.participants.test_import_views import URL, as_user, confirm, csv_upload, post, preview

LIST = (
    "Anna Smit;anna@example.nl;0611000001;Zorg",
    "Bram Vos;bram@example.nl;0611000002;Zorg",
    "Cees Bos;cees@example.nl;0611000003;IT",
)


def counts(page: str) -> list[str]:
    """The preview's list of counts, as the employer reads it."""
    section = re.search(r'<section class="preview".*?</section>', page, flags=re.DOTALL)
    assert section is not None, "no preview on the page"
    return re.findall(r"<li>([^<]+)</li>", section.group(0))


def test_the_preview_says_what_will_happen_and_writes_nothing(
    employer: StaffUser, organisation: Organisation
) -> None:
    assert Department.objects.filter(organisation=organisation, name="IT").exists()
    departments_before = Department.objects.count()

    response = preview(as_user(employer), csv_upload(*LIST), full_list="on")

    assert response.status_code == 200
    page = response.content.decode()
    assert "Nothing has been saved yet." in page
    assert "There is no earlier list to compare with" in page
    assert counts(page)[:4] == [
        "3 rows in this list",
        "3 new rows",
        "0 changed rows (name, e-mail, mobile or department)",
        "0 unchanged rows",
    ]
    # Named, as first written; "IT" exists already.
    assert re.search(r'<ul class="new-departments"><li>Zorg</li></ul>', page)
    assert Participant.objects.count() == 0
    assert Department.objects.count() == departments_before
    assert ListedEntry.objects.count() == 0


def test_confirming_imports_the_previewed_list_once(employer: StaffUser, organisation: Organisation) -> None:
    client = as_user(employer)
    previewed = preview(client, csv_upload(*LIST))

    first = confirm(client, previewed)
    second = confirm(client, previewed)

    assert first.status_code == 302
    assert Participant.objects.filter(organisation=organisation).count() == 3
    assert second.status_code == 200
    assert "This preview has already been used or has expired." in second.content.decode()
    assert ListedEntry.objects.filter(organisation=organisation).count() == 3


def test_a_payload_other_than_the_previewed_one_imports_nothing(
    employer: StaffUser, organisation: Organisation
) -> None:
    client = as_user(employer)
    preview(client, csv_upload(*LIST))
    forged = "naam;e-mail;mobiel;afdeling\r\nEva Eng;eva@example.nl;0611000009;Zorg"
    payload = base64.b64encode(zlib.compress(forged.encode())).decode()

    response = client.post(URL, {"step": "confirm", "payload": payload})

    assert "This preview has already been used or has expired." in response.content.decode()
    assert Participant.objects.count() == 0


def test_a_bomb_of_a_payload_is_refused_without_inflating_it(employer: StaffUser) -> None:
    client = as_user(employer)
    preview(client, csv_upload(*LIST))
    bomb = base64.b64encode(zlib.compress(b"a" * (64 * 1024 * 1024))).decode()

    response = client.post(URL, {"step": "confirm", "payload": bomb})

    assert response.status_code == 200
    assert Participant.objects.count() == 0


def test_confirming_without_a_preview_imports_nothing(employer: StaffUser) -> None:
    response = as_user(employer).post(URL, {"step": "confirm", "payload": "bm90aGluZw=="})

    assert "This preview has already been used or has expired." in response.content.decode()
    assert Participant.objects.count() == 0


def test_an_employer_cannot_confirm_a_preview_made_for_another_organisation(
    employer: StaffUser, other_employer: StaffUser
) -> None:
    client = as_user(other_employer)
    previewed = preview(client, csv_upload(*LIST))
    # The other employer's own session holds that preview: a different session has nothing to confirm.
    response = confirm(as_user(employer), previewed)

    assert "This preview has already been used or has expired." in response.content.decode()
    assert Participant.objects.count() == 0


def test_bad_rows_show_no_preview(employer: StaffUser) -> None:
    response = preview(as_user(employer), csv_upload("Anna Smit;geen-adres;0611000001;Zorg"))

    assert 'class="preview"' not in response.content.decode()
    assert 'name="payload"' not in response.content.decode()


def _changed_names() -> tuple[str, ...]:
    return tuple(
        row.replace("Smit", "Smit-Jansen").replace("Vos", "de Vos").replace("Bos", "Bosch") for row in LIST
    )


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_the_same_changes_count_alike_whatever_each_person_did(
    employer: StaffUser, organisation: Organisation
) -> None:
    """Anna enrolled, Bram stopped, Cees is still invited: renaming all three and dropping them all
    reads the same for each. The import itself no longer changes an enrolled name and finds nobody of
    a stopped person, so counts drawn from the participants would tell them apart."""
    client: Client = as_user(employer)
    post(client, csv_upload(*LIST), full_list="on")
    people = {p.email: p for p in Participant.objects.filter(organisation=organisation)}
    Participant.objects.filter(pk=people["anna@example.nl"].pk).set_state(status="active")
    Participant.objects.filter(pk=people["bram@example.nl"].pk).set_state(status="active")
    stop_participation(participant=Participant.objects.get(pk=people["bram@example.nl"].pk))

    renamed = counts(preview(client, csv_upload(*_changed_names()), full_list="on").content.decode())
    moved = counts(
        preview(
            client, csv_upload(*(row.replace("Zorg", "IT") for row in LIST)), full_list="on"
        ).content.decode()
    )
    again = counts(preview(client, csv_upload(*LIST), full_list="on").content.decode())
    nobody_left = counts(preview(client, csv_upload(LIST[0]), full_list="on").content.decode())

    assert renamed[1:4] == [
        "0 new rows",
        "3 changed rows (name, e-mail, mobile or department)",
        "0 unchanged rows",
    ]
    assert moved[1:4] == [
        "0 new rows",
        "2 changed rows (name, e-mail, mobile or department)",
        "1 unchanged row",
    ]
    assert again[1:4] == [
        "0 new rows",
        "0 changed rows (name, e-mail, mobile or department)",
        "3 unchanged rows",
    ]
    assert nobody_left[4] == "2 rows of the last list are missing: those people will receive no more messages"


def test_every_import_leaves_its_list_for_the_next_preview_and_nothing_else(
    employer: StaffUser, organisation: Organisation
) -> None:
    """Also an import that does not come through the page (a command, the benchmark)."""
    data = "\r\n".join(["naam;e-mail;mobiel;afdeling", *LIST]).encode()

    import_address_list(organisation=organisation, data=data, full_list=True, by=employer)

    entries = list(ListedEntry.objects.filter(organisation=organisation))
    assert len(entries) == 3
    dumped = " ".join(f"{e.email_hash} {e.mobile_hash} {e.row_hash}" for e in entries)
    for clear in ("anna@example.nl", "0611000001", "+31611000001", "Anna", "Zorg"):
        assert clear not in dumped
    # No hash equals a blind index: a dump cannot join the list to the participants.
    indexes = set(Participant.objects.values_list("email_index", flat=True))
    indexes |= set(Participant.objects.values_list("mobile_index", flat=True))
    assert not indexes & {h for e in entries for h in (e.email_hash, e.mobile_hash, e.row_hash)}


def test_a_partial_list_adds_to_the_last_one_and_a_complete_list_replaces_it(
    employer: StaffUser, organisation: Organisation
) -> None:
    client = as_user(employer)
    post(client, csv_upload(*LIST[:2]))
    post(client, csv_upload(LIST[2]))

    assert counts(preview(client, csv_upload(*LIST)).content.decode())[1:4] == [
        "0 new rows",
        "0 changed rows (name, e-mail, mobile or department)",
        "3 unchanged rows",
    ]
    post(client, csv_upload(LIST[0]), full_list="on")
    assert ListedEntry.objects.filter(organisation=organisation).count() == 1


def test_the_last_list_goes_with_the_nightly_run_after_the_contract_ended(
    employer: StaffUser,
    organisation: Organisation,
    other_organisation: Organisation,
    other_employer: StaffUser,
) -> None:
    import datetime as dt

    from django.utils import timezone

    from participants import retention

    data = "\r\n".join(["naam;e-mail;mobiel;afdeling", *LIST]).encode()
    import_address_list(organisation=organisation, data=data, full_list=True, by=employer)
    import_address_list(organisation=other_organisation, data=data, full_list=True, by=other_employer)
    Organisation.objects.filter(pk=organisation.pk).update(
        contract_end=timezone.localdate() - dt.timedelta(days=60)
    )

    retention.run_retention()

    assert not ListedEntry.objects.filter(organisation=organisation).exists()
    assert ListedEntry.objects.filter(organisation=other_organisation).count() == 3
