"""The Celery app: Redis in production, a file-system broker in the embedded default (no server)."""

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "preventicons.settings")

app = Celery("preventicons")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
