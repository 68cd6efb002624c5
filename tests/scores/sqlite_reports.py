"""Run by test_report_pages.py in a process of its own, on the embedded SQLite default: weeks closed by the
real week close, then every report page, the CSV and a threshold raise as the employer gets them, printed as
JSON."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import django


def main() -> None:
    django.setup()
    from django.contrib.auth.models import Group
    from django.core.management import call_command
    from django.test import Client
    from django.utils import translation
    from django_otp import DEVICE_ID_SESSION_KEY
    from django_otp.plugins.otp_totp.models import TOTPDevice

    from participants.models import Department, Organisation, Participant, StaffUser
    from preventicons import crypto
    from preventicons.dbrouter import ALIASES
    from scores import weekclose
    from scores.submission import record_score

    for alias in ALIASES:
        call_command("migrate", database=alias, interactive=False, verbosity=0)
    organisation = Organisation.objects.create(name="Embedded", sector="zorg", sbi_code="8610")
    care = Department.objects.create(organisation=organisation, name="Care")
    small = Department.objects.create(organisation=organisation, name="Small")
    ward = Department.objects.create(organisation=organisation, name="Ward")
    people = []
    for n in range(15):
        department = small if n < 3 else care if n < 10 else ward
        participant = Participant(
            organisation=organisation,
            department=department,
            status="active",
            pseudonym=crypto.new_pseudonym(),
        )
        participant.save()
        people.append((participant, department))
    weeks = [dt.date(2026, 9, 7) + dt.timedelta(weeks=n) for n in range(6)]
    for number, week in enumerate(weeks):
        for index, (participant, department) in enumerate(people):
            record_score(
                pseudonym=participant.pseudonym or "",
                week=week,
                value=1 + (index + number) % 5,
                organisation_id=organisation.pk,
                department_id=department.pk,
            )
        weekclose.close_week(organisation_id=organisation.pk, week=week, today=week + dt.timedelta(days=7))

    user = StaffUser.objects.create_user(username="hr-embedded", password="x", organisation=organisation)  # nosec B106
    user.groups.add(Group.objects.get_or_create(name="employer")[0])
    device = TOTPDevice.objects.create(user=user, name="default", confirmed=True)
    client = Client(HTTP_HOST="127.0.0.1")
    client.force_login(user)
    session = client.session
    session[DEVICE_ID_SESSION_KEY] = device.persistent_id
    session.save()

    statuses = {}
    for level in ("week", "quarter", "year"):
        for suffix in ("", "print/", "report.csv"):
            url = f"/reports/{organisation.pk}/{level}/{suffix}"
            statuses[url] = client.get(url).status_code
    # By position: the header is in the visitor's language (Dutch here, the default).
    rows = list(
        csv.reader(io.StringIO(client.get(f"/reports/{organisation.pk}/week/report.csv").content.decode()))
    )
    group, answers = 2, 3
    with translation.override("nl"):
        whole = translation.gettext("Whole organisation")
    raised = client.post(f"/reports/{organisation.pk}/settings/", {"threshold": "7"}).status_code
    print(
        json.dumps(
            {
                "statuses": statuses,
                "header": rows[0],
                "small": [row[answers] for row in rows if row[group] == "Small"],
                "care": [row[answers] for row in rows if row[group] == "Care"],
                "ward": [row[answers] for row in rows if row[group] == "Ward"],
                "organisation": [row[answers] for row in rows if row[group] == whole],
                "raised": raised,
                "settings": client.get(f"/reports/{organisation.pk}/settings/").status_code,
            }
        )
    )


if __name__ == "__main__":
    main()
