"""Attestations (issue #20, item 4): what the statement says, who may issue, download and verify it, and that
a changed byte anywhere fails, on the public page and in the command."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import re
import threading
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from django.core.files.uploadedfile import SimpleUploadedFile
from django.core.management import call_command
from django.db import connections
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from notary import attestations, checks, ledger, signing
from notary.ledger import Fact
from notary.models import Attestation
from participants.models import Organisation, StaffUser
from tests.conftest import ALL_DATABASES, login_verified
from tests.notary.world import (
    AFTER_Q3,
    BEFORE_Q3,
    IN_Q3,
    Q3_END,
    Q3_START,
    engage,
    record_trajectory,
)

pytestmark = [
    pytest.mark.django_db(databases=ALL_DATABASES),
    pytest.mark.usefixtures("english", "empty_cache"),
]

Q3 = {"period_start": Q3_START.isoformat(), "period_end": Q3_END.isoformat()}


@pytest.fixture
def engaged(auditor: StaffUser, organisation: Organisation) -> StaffUser:
    engage(auditor.pk, organisation.pk)
    return auditor


def issue_q3(organisation: Organisation, auditor: StaffUser) -> Attestation:
    attestation, _new = attestations.issue(
        organisation_id=organisation.pk, period_start=Q3_START, period_end=Q3_END, auditor_id=auditor.pk
    )
    return attestation


def issue_url(organisation: Organisation) -> str:
    return reverse("notary:issue-attestation", kwargs={"organisation_id": organisation.pk})


def verify_on_page_html(data: bytes) -> str:
    response = Client().post(
        reverse("notary:verify"), {"file": SimpleUploadedFile("attestation.json", data, "application/json")}
    )
    assert response.status_code == 200
    return response.content.decode()


def verify_on_page(data: bytes) -> str:
    """What the public page answers to an upload, as text without tags."""
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", verify_on_page_html(data)))


def verify_in_command(data: bytes, tmp_path: Path, *options: str) -> tuple[int, str]:
    target = tmp_path / "attestation.json"
    target.write_bytes(data)
    out = io.StringIO()
    try:
        call_command("verify_attestation", str(target), *options, stdout=out)
    except SystemExit as exit:
        return int(exit.code or 0), out.getvalue()
    return 0, out.getvalue()


def a_quarter_of_trajectories(organisation: Organisation, other: Organisation) -> dict[str, str]:
    """Trajectories around the third quarter of 2026; their references by letter."""
    org = organisation.pk
    return {
        "A": record_trajectory(
            org,
            opened=IN_Q3[0],
            sessions=(IN_Q3[1],),
            completed=IN_Q3[4],
            outcome="improved",
            signed_off=True,
        ),
        "B": record_trajectory(
            org, opened=IN_Q3[1], completed=IN_Q3[6], outcome="not_improved", signed_off=True
        ),
        "C": record_trajectory(org, opened=IN_Q3[2], sessions=(IN_Q3[3],)),
        "D": record_trajectory(
            org, opened=BEFORE_Q3, completed=IN_Q3[3], outcome="not_measurable", signed_off=False
        ),
        "E": record_trajectory(org, opened=IN_Q3[5], completed=AFTER_Q3, outcome="not_improved"),
        "F": record_trajectory(other.pk, opened=IN_Q3[0], completed=IN_Q3[2], outcome="not_improved"),
        "G": record_trajectory(org, opened=BEFORE_Q3, completed=BEFORE_Q3, outcome="not_improved"),
    }


# --- the statement ---


def test_the_statement_counts_the_period_and_names_trajectories_by_reference_only(
    organisation: Organisation, other_organisation: Organisation
) -> None:
    refs = a_quarter_of_trajectories(organisation, other_organisation)

    statement = attestations.build(organisation.pk, Q3_START, Q3_END)

    assert statement["issuer"] == "Anoniem Garant"
    assert statement["organisation"] == {"id": organisation.pk, "name": "Zorggroep Noord"}
    assert statement["period"] == {"length": "quarter", "first_day": "2026-07-01", "last_day": "2026-09-30"}
    trajectories = statement["trajectories"]
    assert trajectories["started"] == 4  # A, B, C, E; D opened before, F is another organisation's
    assert trajectories["completed"] == 3  # A, B, D
    assert trajectories["outcomes"] == {
        refs["A"]: "improved",
        refs["B"]: "not improved",
        refs["D"]: "not measurable",
    }
    assert trajectories["qualifying_for_guarantee"] == 1  # B: completed, not improved
    assert trajectories["signed_off_by_participant"] == 2  # A and B
    assert trajectories["denied_by_participant"] == 1  # D
    assert statement["key_fingerprint"] == signing.fingerprint()
    assert statement["ledger"]["tree_size"] <= ledger.LedgerEntry.objects.count()


def test_the_references_are_written_in_sorted_order_whatever_order_they_ran_in(
    organisation: Organisation, other_organisation: Organisation, engaged: StaffUser
) -> None:
    a_quarter_of_trajectories(organisation, other_organisation)

    document = issue_q3(organisation, engaged).document

    written = re.findall(r'"(TR-[0-9A-Z-]+)"', document)
    assert written == sorted(written)
    assert len(written) == 3


def test_the_statement_holds_no_name_contact_detail_score_note_or_date_finer_than_the_period(
    organisation: Organisation, engaged: StaffUser
) -> None:
    from casefiles import notes
    from tests.casefiles.world import build_world

    world = build_world(organisation)
    notes.add_note(world.dossier, kind="intake", text="Intake over slaapproblemen.", user=world.anna)
    record_trajectory(
        organisation.pk, opened=IN_Q3[0], sessions=(IN_Q3[2],), completed=IN_Q3[5], outcome="improved"
    )

    data = attestations.file_of(issue_q3(organisation, engaged))

    text = data.decode()
    for personal in ("Jan", "Vries", "devries", "example.nl", world.dossier.number, "slaap", "Intake"):
        assert personal.lower() not in text.lower()
    assert world.participant.mobile
    assert world.participant.mobile not in text
    assert set(re.findall(r"\d{4}-\d{2}-\d{2}", text)) == {"2026-07-01", "2026-09-30"}
    assert not re.search(r"\d{4}-W\d{2}", text)
    statement = json.loads(text)["statement"]
    # Nothing but these parts, so no score or text can ride along unnoticed.
    assert set(statement) == {
        "format",
        "issuer",
        "organisation",
        "period",
        "trajectories",
        "privacy_checks",
        "privacy_checks_passed",
        "ledger",
        "key_fingerprint",
    }
    assert set(statement["organisation"]) == {"id", "name"}
    assert set(statement["trajectories"]["outcomes"].values()) <= {
        "improved",
        "not improved",
        "not measurable",
    }
    assert all(set(check) == {"code", "label", "passed", "findings"} for check in statement["privacy_checks"])


@pytest.mark.skipif(
    not hasattr(checks, "threshold_never_lowered"), reason="the auditor's privacy checks are not merged yet"
)
def test_a_failing_privacy_check_appears_in_the_attestation(
    organisation: Organisation, engaged: StaffUser
) -> None:
    ledger.append(
        Fact(
            ledger.Kind.REPORT_SETTING_CHANGED,
            "report_setting_changed:lowered-in-a-test",
            IN_Q3[3],
            organisation_id=organisation.pk,
            facts={"old": 8, "new": 6},
        )
    )

    statement = attestations.statement_of(issue_q3(organisation, engaged))

    lowered = [check for check in statement["privacy_checks"] if check["code"] == "threshold_never_lowered"]
    assert len(lowered) == 1
    assert lowered[0]["passed"] is False
    assert lowered[0]["findings"] >= 1
    assert statement["privacy_checks_passed"] is False


# --- the auditor issues ---


def test_the_engaged_auditor_issues_an_attestation_for_an_ended_quarter(
    client: Client, organisation: Organisation, engaged: StaffUser
) -> None:
    record_trajectory(organisation.pk, opened=IN_Q3[0], completed=IN_Q3[3], outcome="not_improved")
    login_verified(client, engaged)

    response = client.post(issue_url(organisation), Q3, follow=True)

    attestation = Attestation.objects.get()
    assert (attestation.organisation_id, attestation.period_start, attestation.period_end) == (
        organisation.pk,
        Q3_START,
        Q3_END,
    )
    assert attestation.issued_by_id == engaged.pk
    assert attestation.issued_on == timezone.localdate()
    assert signing.signature_holds(attestation.document.encode(), attestation.signature)
    assert "is signed and issued" in response.content.decode()
    assert reverse("notary:attestation-download", kwargs={"attestation_id": attestation.pk}) in (
        response.content.decode()
    )


@pytest.mark.parametrize(
    ("back_to", "lands_on"),
    [
        ("/notary/organisations/{pk}/?period=2026-Q3", "/notary/organisations/{pk}/?period=2026-Q3"),
        ("https://elsewhere.example/notary/", "/notary/organisations/{pk}/attestations/"),
        ("//elsewhere.example/notary/", "/notary/organisations/{pk}/attestations/"),
        ("/staff/", "/notary/organisations/{pk}/attestations/"),
    ],
)
def test_issuing_leads_back_to_the_auditors_page_it_came_from_and_nowhere_else(
    client: Client, organisation: Organisation, engaged: StaffUser, back_to: str, lands_on: str
) -> None:
    login_verified(client, engaged)

    response = client.post(issue_url(organisation), {**Q3, "next": back_to.format(pk=organisation.pk)})

    assert response.status_code == 302
    assert response["Location"] == lands_on.format(pk=organisation.pk)


def test_a_double_submit_issues_one_attestation(
    client: Client, organisation: Organisation, engaged: StaffUser
) -> None:
    login_verified(client, engaged)
    client.post(issue_url(organisation), Q3)

    response = client.post(issue_url(organisation), Q3, follow=True)

    assert Attestation.objects.count() == 1
    assert "was issued already" in response.content.decode()


@pytest.mark.django_db(transaction=True, databases=ALL_DATABASES)
def test_two_parallel_submits_issue_one_attestation(
    organisation: Organisation, auditor: StaffUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    engage(auditor.pk, organisation.pk)
    record_trajectory(organisation.pk, opened=IN_Q3[0], completed=IN_Q3[3], outcome="not_improved")
    # Both submits reach the lock together, each in its own transaction: without it both would find no
    # attestation yet and store one each.
    together = threading.Barrier(2)
    lock = attestations._lock_for_issue

    def lock_together() -> None:
        together.wait(timeout=10)
        lock()

    monkeypatch.setattr(attestations, "_lock_for_issue", lock_together)
    outcomes: list[bool] = []

    def submit() -> None:
        try:
            outcomes.append(issue_new(organisation, auditor))
        finally:
            connections.close_all()

    threads = [threading.Thread(target=submit) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert sorted(outcomes) == [False, True]
    assert Attestation.objects.count() == 1


def issue_new(organisation: Organisation, auditor: StaffUser) -> bool:
    _attestation, is_new = attestations.issue(
        organisation_id=organisation.pk, period_start=Q3_START, period_end=Q3_END, auditor_id=auditor.pk
    )
    return is_new


def test_a_changed_ledger_makes_a_new_attestation_beside_the_old(
    organisation: Organisation, engaged: StaffUser
) -> None:
    first = issue_q3(organisation, engaged)
    record_trajectory(organisation.pk, opened=IN_Q3[4])

    second = issue_q3(organisation, engaged)

    assert second.pk != first.pk
    assert Attestation.objects.count() == 2
    assert attestations.statement_of(second)["trajectories"]["started"] == 1


def test_a_period_not_ended_is_refused_with_a_clear_message(
    client: Client, organisation: Organisation, engaged: StaffUser
) -> None:
    login_verified(client, engaged)
    today = timezone.localdate()
    first, last = today.replace(month=1, day=1), today.replace(month=12, day=31)  # this year

    response = client.post(
        issue_url(organisation),
        {"period_start": first.isoformat(), "period_end": last.isoformat()},
        follow=True,
    )

    assert not Attestation.objects.exists()
    assert "This period has not ended yet" in response.content.decode()


def test_a_period_that_is_not_a_calendar_quarter_or_year_is_refused(
    client: Client, organisation: Organisation, engaged: StaffUser
) -> None:
    login_verified(client, engaged)

    response = client.post(
        issue_url(organisation), {"period_start": "2026-07-06", "period_end": "2026-07-12"}, follow=True
    )

    assert not Attestation.objects.exists()
    assert "calendar quarter or year" in response.content.decode()


def test_a_month_is_refused_the_employer_knows_who_was_away_in_it(
    client: Client, organisation: Organisation, engaged: StaffUser
) -> None:
    # One trajectory started in July, completed "not improved": a July statement would point at whoever
    # the employer knows was away that month. The auditor may read months; the employer gets none.
    record_trajectory(organisation.pk, opened=IN_Q3[0], completed=IN_Q3[3], outcome="not_improved")
    login_verified(client, engaged)

    response = client.post(
        issue_url(organisation), {"period_start": "2026-07-01", "period_end": "2026-07-31"}, follow=True
    )

    assert not Attestation.objects.exists()
    assert "calendar quarter or year" in response.content.decode()
    with pytest.raises(ValueError):
        attestations.period_length(dt.date(2026, 7, 1), dt.date(2026, 7, 31))


@pytest.mark.parametrize(
    "hostile",
    [
        b"[" * 200_000,
        b'{"a":' + b"1" * 5000 + b"}",
        b'{"format":"' + attestations.FORMAT.encode() + b'","signature":"x","statement":{"a":"\\ud800"}}',
    ],
    ids=["nested", "long-number", "lone-surrogate"],
)
def test_a_hostile_file_is_not_valid_on_the_page_and_in_the_command_never_an_error(
    hostile: bytes, tmp_path: Path
) -> None:
    assert not attestations.verify_file(hostile).valid
    assert "Not valid" in verify_on_page(hostile)
    status, _printed = verify_in_command(hostile, tmp_path)
    assert status == 1


def test_a_file_spelled_otherwise_is_not_valid_though_it_reads_the_same(
    organisation: Organisation, engaged: StaffUser
) -> None:
    data = attestations.file_of(issue_q3(organisation, engaged))
    parsed = json.loads(data)

    for respelled in (
        json.dumps(parsed, sort_keys=True, ensure_ascii=False).encode() + b"\n",  # spaces after , and :
        json.dumps(dict(reversed(parsed.items())), separators=(",", ":"), ensure_ascii=False).encode()
        + b"\n",
        data[:-1] + b" ",
        data[:-1] + b"\r\n",
    ):
        assert respelled != data
        assert not attestations.verify_file(respelled).valid
    assert attestations.verify_file(data).valid
    assert attestations.verify_file(data.removesuffix(b"\n")).valid  # pasted: the final newline trimmed


def test_an_auditor_the_organisation_did_not_engage_gets_404(
    client: Client, organisation: Organisation, other_organisation: Organisation, engaged: StaffUser
) -> None:
    attestation = issue_q3(organisation, engaged)
    login_verified(client, engaged)

    assert client.post(issue_url(other_organisation), Q3).status_code == 404
    assert (
        client.get(
            reverse("notary:attestations", kwargs={"organisation_id": other_organisation.pk})
        ).status_code
        == 404
    )
    assert (
        client.post(reverse("notary:issue-attestation", kwargs={"organisation_id": 999999}), Q3).status_code
        == 404
    )
    other_attestation = Attestation.objects.create(
        organisation_id=other_organisation.pk,
        period_start=Q3_START,
        period_end=Q3_END,
        document=attestation.document,
        signature=attestation.signature,
        issued_by_id=engaged.pk,
        issued_on=Q3_END,
    )
    download = reverse("notary:attestation-download", kwargs={"attestation_id": other_attestation.pk})
    assert client.get(download).status_code == 404
    assert Attestation.objects.count() == 2


@pytest.mark.parametrize("who", ["employer", "casemanager", "platform_admin"])
def test_other_roles_may_not_issue(
    client: Client, organisation: Organisation, who: str, request: pytest.FixtureRequest
) -> None:
    login_verified(client, request.getfixturevalue(who))

    assert client.post(issue_url(organisation), Q3).status_code == 403
    assert not Attestation.objects.exists()


# --- the employer downloads ---


def test_the_employer_lists_and_downloads_its_own_attestations_only(
    client: Client,
    organisation: Organisation,
    employer: StaffUser,
    other_employer: StaffUser,
    engaged: StaffUser,
) -> None:
    attestation = issue_q3(organisation, engaged)
    download = reverse("notary:attestation-download", kwargs={"attestation_id": attestation.pk})

    page = login_verified(client, employer).get(reverse("notary:employer-attestations"))
    got = client.get(download)
    other = login_verified(Client(), other_employer)

    assert download in page.content.decode()
    assert "2026-Q3" in page.content.decode()
    assert got.status_code == 200
    assert got["Content-Type"] == "application/json"
    assert "attachment" in got["Content-Disposition"]
    assert got.content == attestations.file_of(attestation)
    assert download not in other.get(reverse("notary:employer-attestations")).content.decode()
    assert other.get(download).status_code == 404


def test_the_employer_finds_its_attestations_on_its_start_page(client: Client, employer: StaffUser) -> None:
    page = login_verified(client, employer).get(reverse("staff-home"))

    assert reverse("notary:employer-attestations") in page.content.decode()


@pytest.mark.parametrize("who", ["casemanager", "auditor", "platform_admin"])
def test_only_employer_staff_open_the_employers_attestation_list(
    client: Client, who: str, request: pytest.FixtureRequest
) -> None:
    login_verified(client, request.getfixturevalue(who))

    assert client.get(reverse("notary:employer-attestations")).status_code == 403


def test_a_casemanager_may_not_download(
    client: Client, organisation: Organisation, casemanager: StaffUser, engaged: StaffUser
) -> None:
    attestation = issue_q3(organisation, engaged)
    login_verified(client, casemanager)

    download = reverse("notary:attestation-download", kwargs={"attestation_id": attestation.pk})
    assert client.get(download).status_code == 403


# --- verifying ---


def test_round_trip_issue_download_verify_on_the_page_and_in_the_command(
    client: Client, organisation: Organisation, employer: StaffUser, engaged: StaffUser, tmp_path: Path
) -> None:
    reference = record_trajectory(
        organisation.pk, opened=IN_Q3[0], completed=IN_Q3[3], outcome="not_improved"
    )
    login_verified(client, engaged).post(issue_url(organisation), Q3)
    attestation = Attestation.objects.get()
    employer_client = login_verified(Client(), employer)
    data = employer_client.get(
        reverse("notary:attestation-download", kwargs={"attestation_id": attestation.pk})
    ).content

    page = verify_on_page(data)
    status, printed = verify_in_command(data, tmp_path)
    offline_status, _ = verify_in_command(data, tmp_path, "--public-key", attestations.public_key_base64())

    assert "Valid: signed by Anoniem Garant" in page
    assert signing.fingerprint() in page
    assert reference in page
    assert "Zorggroep Noord" in page
    assert status == 0
    assert printed.startswith("Valid")
    assert reference in printed
    assert offline_status == 0


def test_the_page_shows_the_public_key_and_its_fingerprint(client: Client) -> None:
    page = client.get(reverse("notary:verify")).content.decode()

    assert attestations.public_key_base64() in page
    assert signing.fingerprint() in page
    assert signing.fingerprint() == signing.fingerprint(
        signing.public_key_from_base64(attestations.public_key_base64())
    )


def test_a_pasted_attestation_verifies_too(
    client: Client, organisation: Organisation, engaged: StaffUser
) -> None:
    data = attestations.file_of(issue_q3(organisation, engaged))

    response = client.post(reverse("notary:verify"), {"text": "\n  " + data.decode() + "\n"})

    assert "Valid: signed by Anoniem Garant" in response.content.decode()


def test_a_changed_byte_anywhere_in_the_statement_fails(
    organisation: Organisation, engaged: StaffUser
) -> None:
    record_trajectory(organisation.pk, opened=IN_Q3[0], completed=IN_Q3[3], outcome="improved")
    data = attestations.file_of(issue_q3(organisation, engaged))
    start = data.index(b'"statement":') + len(b'"statement":')
    end = len(data) - 2  # the file's closing brace and newline

    signature_failures = 0
    for position in range(start, end):
        changed = bytearray(data)
        changed[position] ^= 1  # "0" -> "1", "a" -> "`", '"' -> "#", ...
        verdict = attestations.verify_file(bytes(changed))
        assert not verdict.valid, f"byte {position} ({chr(data[position])!r}) changed and still valid"
        signature_failures += "signature does not hold" in verdict.reason

    assert attestations.verify_file(data).valid
    assert signature_failures > (end - start) // 2  # most changes parse and are caught by the signature


def test_a_changed_signature_fails_even_in_the_unused_bits_of_its_base64(
    organisation: Organisation, engaged: StaffUser
) -> None:
    attestation = issue_q3(organisation, engaged)
    signature = attestation.signature
    last = signature.rstrip("=")[-1]
    # The last character before "==" carries 2 bits of the signature and 4 unused ones.
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    same_bits = alphabet[alphabet.index(last) ^ 1]
    data = attestations.file_of(attestation)

    for replacement in (
        signature[:10] + ("B" if signature[10] != "B" else "C") + signature[11:],
        signature.rstrip("=")[:-1] + same_bits + "==",
    ):
        assert not attestations.verify_file(data.replace(signature.encode(), replacement.encode())).valid


def another_key_signs(statement: dict[str, object], key: Ed25519PrivateKey) -> bytes:
    """The file an impostor makes: the statement re-signed with their own key, naming its fingerprint."""
    forged = {**statement, "key_fingerprint": signing.fingerprint(key.public_key())}
    signature = base64.b64encode(key.sign(attestations.canonical(forged))).decode()
    return attestations.canonical(
        {"format": attestations.FORMAT, "signature": signature, "statement": forged}
    )


def test_a_tampered_attestation_fails_on_the_page_and_in_the_command(
    organisation: Organisation, engaged: StaffUser, tmp_path: Path
) -> None:
    record_trajectory(organisation.pk, opened=IN_Q3[0], completed=IN_Q3[3], outcome="not_improved")
    attestation = issue_q3(organisation, engaged)
    data = attestations.file_of(attestation)
    impostor = Ed25519PrivateKey.generate()
    statement = attestations.statement_of(attestation)
    tampered = {
        "one byte of the statement": data.replace(
            b'"qualifying_for_guarantee":1', b'"qualifying_for_guarantee":0'
        ),
        "the signature": data.replace(attestation.signature[:8].encode(), b"AAAAAAAA"),
        "a swapped key": another_key_signs(statement, impostor),
    }
    assert tampered["one byte of the statement"] != data

    for what, changed in tampered.items():
        page = verify_on_page(changed)
        status, printed = verify_in_command(changed, tmp_path)
        assert "Not valid" in page, what
        assert "Zorggroep Noord" not in page, what  # an invalid statement is not shown as if it were true
        assert status == 1, what
        assert printed.startswith("Not valid"), what

    # The impostor's own key verifies the impostor's file, and not ours: the key comes from the verifier.
    impostor_key = base64.b64encode(signing.public_key_bytes(impostor.public_key())).decode()
    assert verify_in_command(tampered["a swapped key"], tmp_path, "--public-key", impostor_key)[0] == 0
    assert verify_in_command(data, tmp_path, "--public-key", impostor_key)[0] == 1


def test_a_file_with_a_key_twice_is_not_valid(organisation: Organisation, engaged: StaffUser) -> None:
    data = attestations.file_of(issue_q3(organisation, engaged))

    doubled = data.replace(b'{"format":', b'{"format":"x","format":', 1)

    verdict = attestations.verify_file(doubled)
    assert not verdict.valid
    assert "appears twice" in verdict.reason


def test_the_page_refuses_a_file_over_the_size_limit(client: Client) -> None:
    huge = b" " * (attestations.MAX_FILE_BYTES + 1)

    response = client.post(
        reverse("notary:verify"), {"file": SimpleUploadedFile("big.json", huge, "application/json")}
    )

    assert response.status_code == 200
    assert "larger than" in response.content.decode()
    assert "Valid:" not in response.content.decode()


def test_the_page_refuses_an_upload_too_large_to_read_without_reading_it(client: Client) -> None:
    huge = b"{" * (6 * 1024 * 1024)

    response = client.post(
        reverse("notary:verify"), {"file": SimpleUploadedFile("big.json", huge, "application/json")}
    )

    assert response.status_code == 413
    assert "larger than" in response.content.decode()


def test_the_page_is_rate_limited_per_client(client: Client, settings: object) -> None:
    settings.ATTESTATION_VERIFICATIONS_PER_HOUR = 2  # type: ignore[attr-defined]
    answers = [client.post(reverse("notary:verify"), {"text": "{}"}).status_code for _ in range(3)]

    assert answers == [200, 200, 429]
    assert client.get(reverse("notary:verify")).status_code == 200


def test_the_command_prints_the_public_key_and_fingerprint() -> None:
    out = io.StringIO()

    call_command("notary_public_key", stdout=out)

    assert attestations.public_key_base64() in out.getvalue()
    assert signing.fingerprint() in out.getvalue()


def test_the_command_reads_the_file_from_standard_input(
    organisation: Organisation, engaged: StaffUser, monkeypatch: pytest.MonkeyPatch
) -> None:
    data = attestations.file_of(issue_q3(organisation, engaged))
    monkeypatch.setattr("sys.stdin", io.TextIOWrapper(io.BytesIO(data)))
    out = io.StringIO()

    call_command("verify_attestation", "-", stdout=out)

    assert out.getvalue().startswith("Valid")


def test_the_command_refuses_a_malformed_public_key(tmp_path: Path) -> None:
    from django.core.management import CommandError

    with pytest.raises(CommandError):
        verify_in_command(b"{}", tmp_path, "--public-key", "not a key")


def test_ended_periods_are_the_last_quarter_and_year() -> None:
    found = attestations.ended_periods(dt.date(2026, 12, 3))

    assert [period.key for period in found] == ["2026-Q3", "2025"]
    assert [(p.start, p.end) for p in attestations.ended_periods(dt.date(2026, 1, 15))] == [
        (dt.date(2025, 10, 1), dt.date(2025, 12, 31)),
        (dt.date(2025, 1, 1), dt.date(2025, 12, 31)),
    ]


def test_the_attestation_pages_are_well_formed_and_load_nothing_from_elsewhere(
    organisation: Organisation, employer: StaffUser, engaged: StaffUser
) -> None:
    from tests.test_pages import foreign_urls, parse

    attestation = issue_q3(organisation, engaged)
    auditor_page = login_verified(Client(), engaged).get(
        reverse("notary:attestations", kwargs={"organisation_id": organisation.pk})
    )
    pages = {
        "verify": Client().get(reverse("notary:verify")).content.decode(),
        "verdict": verify_on_page_html(attestations.file_of(attestation)),
        "auditor": auditor_page.content.decode(),
        "employer": login_verified(Client(), employer)
        .get(reverse("notary:employer-attestations"))
        .content.decode(),
    }

    for name, html in pages.items():
        page = parse(html)
        assert page.h1_count == 1, name
        assert page.inline_scripts == page.inline_styles == 0, name
        assert page.event_handlers == [], name
        assert foreign_urls(page) == [], name
        for attributes in page.inputs:
            assert attributes.get("id") in page.label_targets, (name, attributes)
