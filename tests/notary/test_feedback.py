"""Feedback reaches the employer only at least five at a time, ratings and remarks together but never paired,
in no order that follows the time; its own organisation's only, for the employer role with two factors."""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import pytest
from django.db import connections
from django.test import Client
from django.utils import timezone
from django.utils.formats import date_format

from casefiles import trajectories
from casefiles.models import Dossier, Trajectory
from notary import feedback, references, signoffs
from notary.models import Feedback, FeedbackRelease, LedgerEntry
from participants.models import Organisation, Participant, StaffUser
from preventicons.dbrouter import CASEFILES
from tests.casefiles.world import signed_casemanager
from tests.conftest import ALL_DATABASES, login_verified
from tests.notary.signoffworld import ended_trajectory, participant_in, pending_feedback, sign_off
from tests.test_pages import foreign_urls, parse

pytestmark = [
    pytest.mark.django_db(databases=ALL_DATABASES),
    pytest.mark.usefixtures("english", "empty_cache"),
]

PAGE = "/notary/feedback/"
REMARKS = ["Zeer behulpzaam", "Rustig gesprek", "Prettig contact", "Goed geholpen", "Aardige coach"]


@pytest.fixture
def anna(organisation: Organisation, other_organisation: Organisation) -> StaffUser:
    return signed_casemanager("cm-noor", organisation, other_organisation)


def english(user: StaffUser) -> Client:
    return login_verified(Client(HTTP_ACCEPT_LANGUAGE="en"), user)


def with_trajectory(organisation: Organisation, anna: StaffUser, name: str) -> Participant:
    participant = participant_in(organisation, name=name)
    ended_trajectory(participant, anna)
    return participant


def signed(
    organisation: Organisation,
    anna: StaffUser,
    remarks: list[str],
    *,
    ratings: str = "54321",
    batch: bool = True,
) -> list[Participant]:
    """One participant per remark signs off with a rating and that remark, each taken up by a batch of its
    own on a day of its own (the first remark first), as they would come in over weeks."""
    people = []
    for index, remark in enumerate(remarks):
        participant = with_trajectory(organisation, anna, f"Deelnemer {organisation.pk}-{index}")
        sign_off(participant, rating=ratings[index % len(ratings)], remark=remark)
        if batch:
            signoffs.take_up(today=timezone.localdate() - dt.timedelta(days=len(remarks) - index))
        people.append(participant)
    return people


def remarks_on(html: str) -> list[str]:
    found = re.search(r'<ul class="remarks">(.*?)</ul>', html, re.S)
    return re.findall(r"<li>(.*?)</li>", found.group(1), re.S) if found else []


# --- at least five --------------------------------------------------------------------------------------


def test_four_give_the_employer_nothing_and_the_fifth_releases_all_five(
    organisation: Organisation, employer: StaffUser, anna: StaffUser
) -> None:
    signed(organisation, anna, REMARKS[:4])

    page = english(employer).get(PAGE).content.decode()
    # Four sign-offs, each alone in its batch: their feedback waits sealed, not yet written (mixed later).
    assert not FeedbackRelease.objects.exists() and not Feedback.objects.exists()
    assert len(pending_feedback()) == 4
    assert "No feedback yet." in page
    assert "Feedback appears once at least 5 responses have come in" in page
    for remark in REMARKS:
        assert remark not in page
    # No count of what waits: no "4" anywhere in the page's text.
    assert not re.search(r"\b4\b", re.sub(r"<[^>]+>", " ", page))

    signed(organisation, anna, REMARKS[4:])

    release = FeedbackRelease.objects.get()
    assert (
        release.organisation_id == organisation.pk
        and release.released_on == timezone.localdate() - dt.timedelta(days=1)
    )
    assert Feedback.objects.filter(release=release).count() == 5
    page = english(employer).get(PAGE).content.decode()
    assert sorted(remarks_on(page)) == sorted(REMARKS)
    assert "5 responses." in page


def test_everything_waiting_goes_out_together_in_one_release(
    organisation: Organisation, employer: StaffUser, anna: StaffUser
) -> None:
    signed(organisation, anna, REMARKS[:4])
    signed(organisation, anna, ["Nog een", "En nog een", "De laatste"], batch=False)

    signoffs.take_up()

    (release,) = feedback.releases_for(organisation.pk)
    assert release.count == 7 and len(release.remarks) == 7
    assert not Feedback.objects.filter(release__isnull=True).exists()


def test_feedback_of_two_organisations_is_counted_apart(
    organisation: Organisation, other_organisation: Organisation, anna: StaffUser
) -> None:
    signed(organisation, anna, REMARKS[:3])
    signed(other_organisation, anna, REMARKS[:3])

    assert not FeedbackRelease.objects.exists()
    assert feedback.release_ready() == []


def test_the_minimum_is_never_below_five(settings: Any) -> None:
    settings.FEEDBACK_RELEASE_MINIMUM = 2

    assert feedback.release_minimum() == 5


def test_a_higher_minimum_waits_longer(organisation: Organisation, anna: StaffUser, settings: Any) -> None:
    settings.FEEDBACK_RELEASE_MINIMUM = 6
    signed(organisation, anna, REMARKS)

    assert not FeedbackRelease.objects.exists()


def test_the_distribution_counts_every_rating(organisation: Organisation, anna: StaffUser) -> None:
    signed(organisation, anna, REMARKS, ratings="55413")

    (release,) = feedback.releases_for(organisation.pk)
    assert release.distribution == [(5, 2), (4, 1), (3, 1), (2, 0), (1, 1)]


def test_a_rating_without_a_remark_counts_and_shows_no_empty_remark(
    organisation: Organisation, employer: StaffUser, anna: StaffUser
) -> None:
    signed(organisation, anna, ["", "", "", "", "Alleen deze"])

    page = english(employer).get(PAGE).content.decode()
    assert remarks_on(page) == ["Alleen deze"]
    assert "5 responses." in page


# --- who may see it ----------------------------------------------------------------------------------------


@pytest.fixture
def released(organisation: Organisation, anna: StaffUser) -> FeedbackRelease:
    signed(organisation, anna, REMARKS)
    return FeedbackRelease.objects.get()


def test_the_employer_of_another_organisation_gets_404_and_sees_none_of_it(
    released: FeedbackRelease, other_employer: StaffUser
) -> None:
    client = english(other_employer)

    assert client.get(f"{PAGE}{released.pk}/").status_code == 404
    page = client.get(PAGE).content.decode()
    assert "No feedback yet." in page
    for remark in REMARKS:
        assert remark not in page


def test_the_employer_opens_its_own_release(released: FeedbackRelease, employer: StaffUser) -> None:
    response = english(employer).get(f"{PAGE}{released.pk}/")

    assert response.status_code == 200
    assert sorted(remarks_on(response.content.decode())) == sorted(REMARKS)


@pytest.mark.parametrize("persona", ["auditor", "casemanager", "platform_admin"])
def test_other_roles_get_403(released: FeedbackRelease, persona: str, request: Any) -> None:
    client = english(request.getfixturevalue(persona))

    assert client.get(PAGE).status_code == 403
    assert client.get(f"{PAGE}{released.pk}/").status_code == 403


def test_without_the_second_factor_the_employer_is_sent_to_the_login(
    released: FeedbackRelease, employer: StaffUser, client: Client
) -> None:
    client.force_login(employer)

    response = client.get(PAGE)

    assert response.status_code == 302 and response["Location"].startswith("/account/login/")


def test_the_employer_finds_feedback_in_the_navigation(employer: StaffUser) -> None:
    assert f'href="{PAGE}"' in english(employer).get("/staff/").content.decode()


# --- what the page must never show -----------------------------------------------------------------------


def test_the_employer_page_shows_no_reference_dossier_number_or_participant(
    organisation: Organisation, employer: StaffUser, anna: StaffUser
) -> None:
    people = signed(organisation, anna, REMARKS)
    client = english(employer)
    html = (
        client.get(PAGE).content.decode()
        + client.get(f"{PAGE}{FeedbackRelease.objects.get().pk}/").content.decode()
    )

    for trajectory in Trajectory.objects.all():
        assert references.reference_for(trajectory.pk) not in html
        assert str(trajectory.pk) not in html
    for dossier in Dossier.objects.all():
        assert dossier.number not in html
    for person in people:
        assert (person.name or "-") not in html and (person.email or "-") not in html
    assert "TR-" not in html


def test_attack_the_release_tells_nothing_of_which_remark_came_first(
    organisation: Organisation,
    other_organisation: Organisation,
    anna: StaffUser,
    other_employer: StaffUser,
    employer: StaffUser,
) -> None:
    # The same remarks, coming in on five different days, in opposite orders at the two organisations, with
    # the ratings going along in opposite orders too.
    signed(organisation, anna, REMARKS, ratings="12345")
    signed(other_organisation, anna, list(reversed(REMARKS)), ratings="54321")

    ours = english(employer).get(PAGE).content.decode()
    theirs = english(other_employer).get(PAGE).content.decode()

    # Both list the remarks in one order, which follows the text alone.
    assert remarks_on(ours) == remarks_on(theirs) == sorted(REMARKS, key=str.casefold)
    # No date but the release's own: none of the days on which the remarks came in.
    release_day = FeedbackRelease.objects.get(organisation_id=organisation.pk).released_on
    for back in range(2, 6):
        day = release_day - dt.timedelta(days=back - 1)
        for shown in (day.isoformat(), date_format(day), date_format(day, "SHORT_DATE_FORMAT")):
            assert shown not in ours
    assert date_format(release_day) in ours
    # No rating beside a remark: each list item is the remark and nothing else.
    assert all(item in REMARKS for item in remarks_on(ours))
    # No per-remark id or anchor that a later look could order by.
    for row in Feedback.objects.all():
        assert str(row.pk) not in ours


def test_a_feedback_row_holds_no_reference_and_no_date(organisation: Organisation, anna: StaffUser) -> None:
    signed(organisation, anna, REMARKS[:4])
    signed(organisation, anna, ["Nog een"], batch=False)
    signed(organisation, anna, ["De laatste"])

    with connections[CASEFILES].cursor() as cursor:
        cursor.execute("SELECT * FROM notary_feedback")
        columns = [column.name for column in cursor.description]
        rows = cursor.fetchall()
    assert len(rows) == 6
    assert sorted(columns) == ["id", "organisation", "person", "rating", "release_id", "remark"]
    dump = " ".join(str(value) for row in rows for value in row)
    for trajectory in Trajectory.objects.all():
        assert references.reference_for(trajectory.pk) not in dump
    assert "Zeer" not in dump and "Rustig" not in dump


def test_the_employer_page_is_one_h1_with_no_inline_code(
    released: FeedbackRelease, employer: StaffUser
) -> None:
    client = english(employer)
    for path in (PAGE, f"{PAGE}{released.pk}/"):
        page = parse(client.get(path).content.decode())
        assert page.h1_count == 1 and page.inline_scripts == 0 and page.event_handlers == [], path
        assert foreign_urls(page) == [], path


def test_releases_are_listed_newest_first(
    organisation: Organisation, employer: StaffUser, anna: StaffUser
) -> None:
    signed(organisation, anna, REMARKS)
    later = ["Later een", "Later twee", "Later drie", "Later vier", "Later vijf"]
    signed(organisation, anna, later, batch=False)
    signoffs.take_up()

    html = english(employer).get(PAGE).content.decode()

    assert [release.count for release in feedback.releases_for(organisation.pk)] == [5, 5]
    assert html.index("Later een") < html.index("Aardige coach")


# --- people, not rows (one person cannot make a release) ---------------------------------------------------


def five_trajectories_signed_off_by_one(organisation: Organisation, anna: StaffUser) -> Participant:
    """One participant whose dossier holds five ended trajectories, each signed off with a rating of 1 and a
    remark, each taken up by a batch of its own."""
    jan = participant_in(organisation, name="Bram Veelvoud")
    dossier, _first = ended_trajectory(jan, anna, ended_on=timezone.localdate() - dt.timedelta(weeks=8))
    for weeks in (6, 4, 2, 0):
        end = timezone.localdate() - dt.timedelta(weeks=weeks)
        trajectory = trajectories.start_trajectory(
            dossier, kind="coaching", started_on=end - dt.timedelta(days=5), user=anna
        )
        trajectories.end_trajectory(trajectory, ended_on=end, user=anna)
        references.reference_for(trajectory.pk)
    for number in range(5):
        first = signoffs.open_sign_offs(participant=jan)[0]
        signoffs.queue_sign_off(
            participant=jan, choice=first.choice, took_place="yes", rating="1", remark=f"Eén stem {number}"
        )
        signoffs.take_up()
    assert LedgerEntry.objects.filter(kind=LedgerEntry.Kind.SIGNED_OFF).count() == 5
    return jan


def test_attack_one_person_s_five_sign_offs_make_no_release(
    organisation: Organisation, employer: StaffUser, anna: StaffUser
) -> None:
    five_trajectories_signed_off_by_one(organisation, anna)

    # Five feedback rows wait, all from one person: counted as rows, they would be a release, and the
    # employer would read that one person's five ratings.
    assert Feedback.objects.filter(release__isnull=True).count() == 5
    assert not FeedbackRelease.objects.exists()
    page = english(employer).get(PAGE).content.decode()
    assert "No feedback yet." in page and "Eén stem" not in page


def test_a_release_holds_one_row_per_person_and_the_rest_waits(
    organisation: Organisation, employer: StaffUser, anna: StaffUser
) -> None:
    five_trajectories_signed_off_by_one(organisation, anna)

    signed(organisation, anna, REMARKS)

    (release,) = feedback.releases_for(organisation.pk)
    assert release.count == 6
    assert len([remark for remark in release.remarks if remark.startswith("Eén stem")]) == 1
    assert sorted(remark for remark in release.remarks if not remark.startswith("Eén stem")) == sorted(
        REMARKS
    )
    # Jan's other four wait for releases beside other people; the released rows keep no person hash.
    assert Feedback.objects.filter(release__isnull=True).count() == 4
    assert not Feedback.objects.filter(release__isnull=False, person__isnull=False).exists()


# --- sealed ratings, never written with their sign-off ----------------------------------------------------


def test_attack_a_dump_reads_no_rating(organisation: Organisation, anna: StaffUser) -> None:
    signed(organisation, anna, REMARKS, ratings="12345")

    with connections[CASEFILES].cursor() as cursor:
        cursor.execute("SELECT rating::text FROM notary_feedback")
        ratings = [row[0] for row in cursor.fetchall()]
        cursor.execute("SELECT sealed FROM notary_pendingfeedback")
        pending = [row[0] for row in cursor.fetchall()]
    assert len(ratings) == 5 and all(rating.startswith("v1.") for rating in ratings)
    assert all(sealed.startswith("v1.") for sealed in pending)
    # The application still reads them.
    assert sorted(row.rating for row in Feedback.objects.all()) == [1, 2, 3, 4, 5]


def test_attack_a_waiting_feedback_row_does_not_name_its_organisation(
    organisation: Organisation, other_organisation: Organisation, anna: StaffUser
) -> None:
    """One mix holds one sign-off of this organisation and four of another. With the organisation in clear,
    the one waiting row of this organisation paired with its one ``signed_off`` entry since the last mix:
    that trajectory, by its reference, was rated. Sealed, the waiting rows of a mix tell nothing apart."""
    signed(organisation, anna, ["Eentje"], batch=False)
    signed(other_organisation, anna, REMARKS[:4], batch=False)
    signoffs.take_up()  # one batch, one mix of five; no release: 1 and 4 people
    ours = list(LedgerEntry.objects.filter(kind=LedgerEntry.Kind.SIGNED_OFF, organisation_id=organisation.pk))
    assert len(ours) == 1 and not FeedbackRelease.objects.exists()

    with connections[CASEFILES].cursor() as cursor:
        cursor.execute("SELECT * FROM notary_feedback WHERE release_id IS NULL")
        columns = [column.name for column in cursor.description]
        waiting = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    assert len(waiting) == 5
    # What the operator could pair by: any value but the row's own id that is not a sealed one.
    readable = {
        (name, str(value))
        for row in waiting
        for name, value in row.items()
        if value is not None and name != "id" and not str(value).startswith("v1.")
    }
    assert readable == set()
    # Every sealed organisation is one length, whichever organisation it names.
    assert len({len(row["organisation"]) for row in waiting}) == 1
    # The application still tells them apart: four more of ours and one more of the other's, mixed, release
    # five people of each, each release its own organisation's.
    signed(organisation, anna, ["Nog een", "Nog twee", "Nog drie", "Nog vier"], batch=False)
    signed(other_organisation, anna, ["Nog vijf"], batch=False)
    signoffs.take_up()
    assert sorted(FeedbackRelease.objects.values_list("organisation_id", flat=True)) == sorted(
        [organisation.pk, other_organisation.pk]
    )
    assert [shown.count for shown in feedback.releases_for(organisation.pk)] == [5]
    assert "Eentje" in feedback.releases_for(organisation.pk)[0].remarks
    assert [shown.count for shown in feedback.releases_for(other_organisation.pk)] == [5]


@pytest.fixture
def transactions_noted() -> Any:
    """Which top-level transaction (txid_current, as an operator reads it from xmin and pg_subtrans) wrote
    each ledger entry and feedback row: a trigger notes it in a table of the test's own."""
    if connections[CASEFILES].vendor != "postgresql":
        pytest.skip("transaction ids: PostgreSQL")
    tables = ("notary_ledgerentry", "notary_feedback")
    with connections[CASEFILES].cursor() as cursor:
        cursor.execute("CREATE TABLE attack_written (written text, txid bigint)")
        cursor.execute(
            "CREATE FUNCTION attack_note() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
            "INSERT INTO attack_written VALUES (TG_TABLE_NAME, txid_current()); RETURN NULL; END $$"
        )
        for table in tables:
            cursor.execute(
                f"CREATE TRIGGER attack_note AFTER INSERT ON {table} "
                "FOR EACH ROW EXECUTE FUNCTION attack_note()"
            )

    def noted() -> dict[str, list[int]]:
        with connections[CASEFILES].cursor() as cursor:
            cursor.execute("SELECT written, txid FROM attack_written")
            found: dict[str, list[int]] = {table: [] for table in tables}
            for written, txid in cursor.fetchall():
                found[written].append(txid)
        return found

    yield noted
    with connections[CASEFILES].cursor() as cursor:
        for table in tables:
            cursor.execute(f"DROP TRIGGER attack_note ON {table}")
        cursor.execute("DROP FUNCTION attack_note()")
        cursor.execute("DROP TABLE attack_written")


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_attack_no_feedback_row_commits_in_the_transaction_of_a_sign_off(
    organisation: Organisation, anna: StaffUser, transactions_noted: Any
) -> None:
    # Five people, each signing off alone in an hour's batch: the case where a batch's one ledger entry and
    # one feedback row, written together, paired a trajectory's reference with its rating.
    signed(organisation, anna, REMARKS)

    written = transactions_noted()
    assert len(written["notary_feedback"]) == 5 and FeedbackRelease.objects.count() == 1
    assert not set(written["notary_feedback"]) & set(written["notary_ledgerentry"])
    # All five written by one transaction, so none is paired with one sign-off by when it was written.
    assert len(set(written["notary_feedback"])) == 1
