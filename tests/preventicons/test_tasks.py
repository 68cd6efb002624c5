"""Beat's schedule and the platform's housekeeping tasks."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest
from django.contrib.sessions.models import Session
from django.utils import timezone

from preventicons.celery import app as celery_app
from preventicons.sessions import SessionStore
from preventicons.tasks import clear_expired_sessions


def test_every_task_in_the_beat_schedule_is_registered(settings: Any) -> None:
    celery_app.loader.import_default_modules()

    missing = [
        entry["task"]
        for entry in settings.CELERY_BEAT_SCHEDULE.values()
        if entry["task"] not in celery_app.tasks
    ]

    assert missing == []


@pytest.mark.django_db
def test_expired_sessions_are_cleared_and_live_ones_kept() -> None:
    live, expired = SessionStore(), SessionStore()
    live["participant_id"] = "live"
    expired["participant_id"] = "gone"
    live.create()
    expired.create()
    Session.objects.filter(session_key=expired.session_key).update(
        expire_date=timezone.now() - dt.timedelta(minutes=1)
    )

    clear_expired_sessions()

    assert set(Session.objects.values_list("session_key", flat=True)) == {live.session_key}
