"""The dashboard reads its dossiers in a fixed number of queries whatever their count (casefiles.dashboard),
and still leaves out, per organisation, the dossiers of one its casemanager no longer serves."""

from __future__ import annotations

import pytest
from django.db import connections
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from participants import casemanagers
from participants.models import Organisation, StaffUser
from preventicons.dbrouter import ALIASES
from tests.casefiles.world import active_participant, add_weeks, ask_for_help, signed_casemanager
from tests.conftest import ALL_DATABASES, login_verified

pytestmark = [pytest.mark.django_db(databases=ALL_DATABASES), pytest.mark.usefixtures("english")]


def dashboard_queries(client: Client) -> list[int]:
    contexts = {alias: CaptureQueriesContext(connections[alias]) for alias in ALIASES}
    for context in contexts.values():
        context.__enter__()
    try:
        response = client.get(reverse("casefiles:dashboard"))
    finally:
        for context in contexts.values():
            context.__exit__(None, None, None)
    assert response.status_code == 200
    return [len(contexts[alias].captured_queries) for alias in ALIASES]


def new_dossier(organisation: Organisation) -> str:
    participant = active_participant(organisation)
    add_weeks(participant, [4, 2])
    return ask_for_help(participant).number


def test_the_dashboard_runs_as_many_queries_for_five_dossiers_as_for_one(
    organisation: Organisation, client: Client
) -> None:
    anna: StaffUser = signed_casemanager("cm-anna", organisation)
    new_dossier(organisation)
    login_verified(client, anna)
    one = dashboard_queries(client)

    for _ in range(4):
        new_dossier(organisation)

    assert dashboard_queries(client) == one


def test_the_dashboard_leaves_out_only_the_organisation_the_casemanager_no_longer_serves(
    organisation: Organisation, other_organisation: Organisation, client: Client
) -> None:
    anna: StaffUser = signed_casemanager("cm-anna", organisation, other_organisation)
    kept = [new_dossier(organisation) for _ in range(2)]
    dropped = [new_dossier(other_organisation) for _ in range(2)]
    casemanagers.unlink_casemanager(organisation=other_organisation, casemanager=anna)

    page = login_verified(client, anna).get(reverse("casefiles:dashboard")).content.decode()

    assert all(number in page for number in kept)
    assert not any(number in page for number in dropped)
