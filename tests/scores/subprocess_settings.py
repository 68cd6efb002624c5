"""Settings for a round run as a separate process in tests: queued messages wait in the outbox.

With eager tasks the subprocess would send each batch's messages itself, to its own in-memory backends;
here they stay pending, and the test delivers them to the local SMTP server and fake Twilio and counts.
"""

from preventicons.settings_test import *  # noqa: F403

CELERY_TASK_ALWAYS_EAGER = False
