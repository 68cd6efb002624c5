"""Test settings: the production code paths with fast hashing and a throw-away key set.

Databases come from the same environment variables as everywhere else; `make test` points them at
PostgreSQL and Redis on 127.0.0.1 (see the Makefile), so the suite runs against the real services.
"""

import json
import os

from preventicons.keys import generate_key_document

# A fresh key set per test process, passed inline so no key file is needed and none is left behind.
os.environ.setdefault("PREVENTICONS_KEYS", json.dumps(generate_key_document()))

from preventicons.settings import *  # noqa: F403

# Argon2 costs about 0.1 s per hash here; tests hash many passwords. Production keeps Argon2.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
EMAIL_BACKEND = "django.core.mail.backends.locmem.EmailBackend"
SMS_GATEWAY = "preventicons.gateways.MemorySmsGateway"
CELERY_TASK_ALWAYS_EAGER = True
CELERY_TASK_EAGER_PROPAGATES = True
CELERY_BROKER_URL = "memory://"
CELERY_BROKER_TRANSPORT_OPTIONS = {}
# Tests assert on the English source texts; the Dutch default is tested explicitly (tests/test_pages.py)
# and the translation's completeness by tests/test_translations.py.
LANGUAGE_CODE = "en"
# Unpaced: the pacing itself is tested with a fake clock (tests/preventicons/test_messaging.py).
MESSAGE_RATE_EMAIL_PER_SECOND = 0.0
MESSAGE_RATE_SMS_PER_SECOND = 0.0
# No floor under a link's steps, which many tests walk: the tests of the floor set their own.
LINK_STEP_SECONDS = 0.0
