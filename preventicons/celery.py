"""The Celery app: Redis in production, a file-system broker in the embedded default (no server)."""

import os
from typing import Any

from celery import Celery
from celery.signals import beat_init, worker_init

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "preventicons.settings")

app = Celery("preventicons")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()


@worker_init.connect
@beat_init.connect
def refuse_to_start_without_keys(**kwargs: Any) -> None:
    """Workers and beat run no system checks: a missing or malformed key set stops them at start-up."""
    from preventicons.keys import get_key_set

    get_key_set()
