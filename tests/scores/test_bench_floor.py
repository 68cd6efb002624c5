"""The benchmark's floor (bench/trivial): its one INSERT must still fit the score table it is compared with.

When the table changes (a column sealed, renamed or added), the floor must change with it, or `make bench`
measures a view that only fails. Written after exactly that happened.
"""

from __future__ import annotations

import pytest
from django.test import RequestFactory

from bench.trivial.views import insert_one
from participants.models import Organisation
from scores.models import Score
from tests.conftest import ALL_DATABASES


@pytest.mark.django_db(databases=ALL_DATABASES)
def test_the_one_insert_view_writes_a_row_the_score_table_accepts(organisation: Organisation) -> None:
    request = RequestFactory().post("/", {"week": "2026-11-16", "organisation": str(organisation.pk)})
    response = insert_one(request)
    assert response.status_code == 200
    assert Score.objects.filter(organisation=organisation).count() == 1
