"""A view that does one INSERT and nothing else: the floor a real submission is compared with.

It writes a fixed stand-in for a sealed value (the column accepts ciphertext only) and seals nothing, so
the ratio to the real submission includes what sealing the value and deriving the per-week pseudonym cost.
"""

from __future__ import annotations

import secrets
import uuid

from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

# As long as a sealed score value (a 32-byte bucket): the same bytes on the wire and on disk.
STAND_IN_CIPHERTEXT = "v1.bench." + "A" * 87


@csrf_exempt
@require_POST
def insert_one(request: HttpRequest) -> HttpResponse:
    """Insert one score row for the organisation and week in the POST; no lookup, no template."""
    with connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO scores_score (id, week, value, organisation_id, department, pseudonym) "
            "VALUES (%s, %s, %s, %s, %s, %s)",
            [
                uuid.uuid4(),
                request.POST["week"],
                STAND_IN_CIPHERTEXT,
                int(request.POST["organisation"]),
                STAND_IN_CIPHERTEXT,  # an open week's row carries its department sealed (scores.models.Score)
                secrets.token_hex(32),
            ],
        )
    return HttpResponse("ok", content_type="text/plain")
