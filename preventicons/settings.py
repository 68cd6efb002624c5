"""Settings, read from the environment in this one place (every variable is documented in .env.example).

With nothing configured this is the embedded default: three SQLite files under var/, console e-mail and
SMS, and a Celery broker on the file system, so a first run needs no server at all.
"""

from __future__ import annotations

from pathlib import Path

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

BASE_DIR = Path(__file__).resolve().parent.parent
env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

ENVIRONMENT = env.str("PREVENTICONS_ENV", default="development")
if ENVIRONMENT not in {"development", "production"}:
    raise ImproperlyConfigured("PREVENTICONS_ENV must be 'development' or 'production'")
PRODUCTION = ENVIRONMENT == "production"
VAR_DIR = Path(env.str("PREVENTICONS_VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = env.bool("DJANGO_DEBUG", default=not PRODUCTION)
if PRODUCTION and DEBUG:
    raise ImproperlyConfigured("DJANGO_DEBUG must be off in production")
if PRODUCTION:
    SECRET_KEY = env.str("DJANGO_SECRET_KEY")
else:
    SECRET_KEY = env.str("DJANGO_SECRET_KEY", default="development-only-" + "x" * 50)
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=[] if PRODUCTION else ["localhost", "127.0.0.1"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])
# The address invitation and weekly links point to: required in production, where a wrong default would
# send every participant a dead link.
if PRODUCTION:
    SITE_URL = env.str("PREVENTICONS_SITE_URL").rstrip("/")
else:
    SITE_URL = env.str("PREVENTICONS_SITE_URL", default="http://127.0.0.1:8000").rstrip("/")

# --- Keys: never from a database (preventicons/keys.py) -----------------------------------------
PREVENTICONS_KEYS = env.str("PREVENTICONS_KEYS", default="")
PREVENTICONS_KEY_FILE = env.str(
    "PREVENTICONS_KEY_FILE", default="" if PRODUCTION else str(VAR_DIR / "keys.json")
)

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django_otp",
    "django_otp.plugins.otp_static",
    "django_otp.plugins.otp_totp",
    "two_factor",
    "two_factor.plugins.phonenumber",
    "preventicons",
    "participants",
    "scores",
    "casefiles",
    "notary",
]

MIDDLEWARE = [
    # First, so that everything below, the session's save included, is inside its floor.
    "preventicons.middleware.EvenLinkStepsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "csp.middleware.CSPMiddleware",
    "preventicons.middleware.SecurityHeadersMiddleware",
    # The weekly tap's pages are served here and skip everything below (preventicons/leanpages.py).
    "preventicons.leanpages.LeanPageMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so its 404 page renders with the visitor's language, session and login (templates/404.html).
    "preventicons.middleware.StyledNotFoundMiddleware",
]

ROOT_URLCONF = "preventicons.urls"
WSGI_APPLICATION = "preventicons.wsgi.application"
TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "preventicons.leanpages.context",
            ],
        },
    }
]

# --- Three stores that cannot be joined (preventicons/dbrouter.py) ------------------------------
_DATABASE_ENV = {
    "default": "DATABASE_URL",
    "notes": "NOTES_DATABASE_URL",
    "casefiles": "CASEFILES_DATABASE_URL",
}
_configured = {alias: env.str(var, default="") for alias, var in _DATABASE_ENV.items()}
if any(_configured.values()) and not all(_configured.values()):
    missing = [var for alias, var in _DATABASE_ENV.items() if not _configured[alias]]
    raise ImproperlyConfigured(f"set all three database URLs or none; missing: {', '.join(missing)}")
DB_POOL = env.bool("DB_POOL", default=True)
# --- What the database server shows (pg_stat_activity, statement logs) ------------------------
# psycopg binds parameters on the client unless told otherwise: every statement would reach the server with
# its values inlined, and pg_stat_activity, pg_stat_statements and statement logs would show them (an
# address's ciphertext, a token hash, the week a score was given for). With server-side binding the server
# sees "$1, $2" and gets the values apart. Development may switch it off to measure its cost; production may
# not.
DB_SERVER_SIDE_BINDING = env.bool("DB_SERVER_SIDE_BINDING", default=True)
if PRODUCTION and not DB_SERVER_SIDE_BINDING:
    raise ImproperlyConfigured("DB_SERVER_SIDE_BINDING must stay on in production")
# After this many runs of the same query on a connection psycopg prepares it on the server (less parsing and
# planning). 0 prepares at once; "none" never prepares (for a pooler in transaction mode that cannot keep
# prepared statements, such as PgBouncer before 1.21).
_prepare_threshold = env.str("DB_PREPARE_THRESHOLD", default="5").strip().lower()
DB_PREPARE_THRESHOLD = None if _prepare_threshold == "none" else int(_prepare_threshold)


def _database(alias: str) -> dict:
    url = _configured[alias]
    if not url:
        if PRODUCTION:
            raise ImproperlyConfigured(
                "production needs DATABASE_URL, NOTES_DATABASE_URL, CASEFILES_DATABASE_URL"
            )
        VAR_DIR.mkdir(parents=True, exist_ok=True)
        return {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": VAR_DIR / f"{alias}.sqlite3",
            "OPTIONS": {
                "timeout": 20,
                "transaction_mode": "IMMEDIATE",
                "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
            },
            "TEST": {"NAME": VAR_DIR / f"test-{alias}.sqlite3", "DEPENDENCIES": []},
        }
    config = env.db_url_config(url)
    if config["ENGINE"] != "django.db.backends.postgresql":
        raise ImproperlyConfigured(f"{_DATABASE_ENV[alias]} must be a postgres:// URL")
    # Django's PostgreSQL backend with our pool check (preventicons/postgres/base.py).
    config["ENGINE"] = "preventicons.postgres"
    options = config.setdefault("OPTIONS", {})
    options["server_side_binding"] = DB_SERVER_SIDE_BINDING
    if DB_SERVER_SIDE_BINDING:
        options["prepare_threshold"] = DB_PREPARE_THRESHOLD
    # The stores are independent: none needs another created first (and a lone notes test must run).
    config["TEST"] = {"DEPENDENCIES": []}
    if DB_POOL:
        config["CONN_MAX_AGE"] = 0
        # Not Django's health check (an empty query on every checkout, one of a tap's three round trips):
        # a pooled connection is checked by a look at its socket (preventicons/dbpool.py), which our
        # backend gives Django's pool (preventicons/postgres/base.py).
        config["CONN_HEALTH_CHECKS"] = False
        options["pool"] = {"min_size": 1, "max_size": env.int("DB_POOL_MAX", default=8)}
    else:
        config["CONN_HEALTH_CHECKS"] = True
        config["CONN_MAX_AGE"] = env.int("DB_CONN_MAX_AGE", default=60)
    return config


DATABASES = {alias: _database(alias) for alias in _DATABASE_ENV}
DATABASE_ROUTERS = ["preventicons.dbrouter.StoreRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache (rate limits) ------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

# --- Uploads (the employer's address list, participants/importing.py) ---------------------------
# An address list is names, e-mail addresses and mobile numbers in clear. Django's default handlers spool
# an upload above 2.5 MB to a temporary file on disk, where it would outlive the request (and end up in
# backups). Only the in-memory handler: an upload larger than FILE_UPLOAD_MAX_MEMORY_SIZE is then dropped
# while it is read, never written anywhere, and the import page refuses it as too large.
ADDRESS_LIST_MAX_BYTES = 5 * 1024 * 1024
FILE_UPLOAD_HANDLERS = ["django.core.files.uploadhandler.MemoryFileUploadHandler"]
# The whole multipart request: the file plus its boundaries and the other form fields.
FILE_UPLOAD_MAX_MEMORY_SIZE = ADDRESS_LIST_MAX_BYTES + 64 * 1024
# Non-file form fields only (Django excludes file data from this limit); kept at the same bound.
DATA_UPLOAD_MAX_MEMORY_SIZE = ADDRESS_LIST_MAX_BYTES

# --- Staff accounts -----------------------------------------------------------------------------
AUTH_USER_MODEL = "participants.StaffUser"
# Passwords through Django's model backend; the platform admin role grants the admin's model permissions
# (preventicons/roles.py). Admin access follows that role, never the is_staff flag.
AUTHENTICATION_BACKENDS = [
    "django.contrib.auth.backends.ModelBackend",
    "preventicons.roles.PlatformAdminPermissions",
]
PASSWORD_HASHERS = ["django.contrib.auth.hashers.Argon2PasswordHasher"]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "two_factor:login"
LOGIN_REDIRECT_URL = "staff-home"
LOGOUT_REDIRECT_URL = "home"
TWO_FACTOR_SMS_GATEWAY = "preventicons.gateways.TwoFactorSmsGateway"
TWO_FACTOR_PATCH_ADMIN = False
TWO_FACTOR_REMEMBER_COOKIE_AGE = None
OTP_TOTP_ISSUER = "Preventicons"
# An admin who could read another staff member's TOTP key or backup codes could log in as them.
OTP_ADMIN_HIDE_SENSITIVE_DATA = True
PHONENUMBER_DEFAULT_REGION = "NL"
# A wrong staff code can trigger a new SMS: bound how many one staff user can cause.
STAFF_SMS_PER_HOUR = env.int("STAFF_SMS_PER_HOUR", default=5)

# --- Staff second factors: single use, counted failures, re-authentication (preventicons/staffauth.py) ---
# Wrong codes (any device, and wrong passwords when re-authenticating) before the account locks.
STAFF_SECOND_FACTOR_MAX_FAILURES = env.int("STAFF_SECOND_FACTOR_MAX_FAILURES", default=10)
# How long a lock lasts unless a platform admin releases it earlier.
STAFF_SECOND_FACTOR_LOCK_MINUTES = env.int("STAFF_SECOND_FACTOR_LOCK_MINUTES", default=30)
# How long a fresh password-and-code check opens the pages that change a staff member's credentials.
STAFF_REAUTH_SECONDS = env.int("STAFF_REAUTH_SECONDS", default=300)

# Participants reach their account through a link and an SMS code; it closes after this long idle.
PARTICIPANT_SESSION_SECONDS = env.int("PARTICIPANT_SESSION_SECONDS", default=15 * 60)
SESSION_COOKIE_AGE = env.int("SESSION_COOKIE_AGE", default=8 * 3600)
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
CSRF_COOKIE_HTTPONLY = True

# --- Sessions: sealed in the session table (preventicons/sessions.py) ---
# Django's database engine only signs session_data: a dump would show every participant_id and staff user id
# with when they were last seen. Ours seals it with the field key; on SQLite as on PostgreSQL.
SESSION_ENGINE = "preventicons.sessions"

# --- Enrolment: invitation links and two-factor codes (participants/enrolment.py, verification.py) ---
INVITATION_DAYS = env.int("INVITATION_DAYS", default=14)
VERIFICATION_CODE_MINUTES = env.int("VERIFICATION_CODE_MINUTES", default=10)
# Per participant per hour, across purposes and resends, so asking for new codes never resets the budget.
VERIFICATION_CODE_ROUNDS_PER_HOUR = env.int("VERIFICATION_CODE_ROUNDS_PER_HOUR", default=5)
VERIFICATION_FAILURES_PER_HOUR = env.int("VERIFICATION_FAILURES_PER_HOUR", default=10)
# The wait before the n-th further round within the hour: base * 2**(n-1) seconds (30, 60, 120, ...).
VERIFICATION_RESEND_BASE_SECONDS = env.int("VERIFICATION_RESEND_BASE_SECONDS", default=30)
# Links we never made (a truncated, guessed or scanned token) one client address may open per hour on any
# token page (/i/, /w/, /me/link/ ...) before they answer 429 (preventicons.ratelimit). A link we made is
# never counted nor refused, so a colleague behind the same office address still opens their own.
UNKNOWN_LINKS_PER_HOUR = env.int("UNKNOWN_LINKS_PER_HOUR", default=30)
# Attestations one client address may check on the public /verify/ page per hour (notary): verifying costs
# a signature check and a parse of up to half a megabyte, so a loop of uploads is refused (429) early.
ATTESTATION_VERIFICATIONS_PER_HOUR = env.int("ATTESTATION_VERIFICATIONS_PER_HOUR", default=60)
# Codes go only to mobile numbers of these countries (ISO 3166 codes; participants.contact). Every number
# we accept, from the employer's list, at enrolment or in the account, is checked by the same rules.
MOBILE_COUNTRIES = env.list("MOBILE_COUNTRIES", default=["NL", "BE", "DE"])

# --- Messaging (the outbox in preventicons/messaging.py, providers in preventicons/gateways.py) -
# In development with DEBUG on (make run) every message lands whole in the development mailbox under
# var/mailbox/, read at /dev/mailbox/ (preventicons/devmailbox.py), never in a log; with DEBUG off, where that
# page answers 404, the console backends print them (through the redacting log filter in a worker).
DEVELOPMENT_MAILBOX = DEBUG and not PRODUCTION
EMAIL_BACKEND = env.str(
    "EMAIL_BACKEND",
    default="django.core.mail.backends.smtp.EmailBackend"
    if PRODUCTION
    else "preventicons.devmailbox.MailboxEmailBackend"
    if DEVELOPMENT_MAILBOX
    else "django.core.mail.backends.console.EmailBackend",
)
EMAIL_HOST = env.str("EMAIL_HOST", default="localhost")
EMAIL_PORT = env.int("EMAIL_PORT", default=25)
EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", default="")
EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", default="")
EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", default=False)
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", default=20)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="Preventicons <noreply@preventicons.localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Where participants write when something is wrong (an address change they did not make): the platform's
# own privacy desk, never the employer's HR department.
SUPPORT_EMAIL = env.str("PREVENTICONS_SUPPORT_EMAIL", default="privacy@preventicons.localhost")
SMS_GATEWAY = env.str(
    "SMS_GATEWAY",
    default="preventicons.gateways.TwilioSmsGateway"
    if PRODUCTION
    else "preventicons.devmailbox.MailboxSmsGateway"
    if DEVELOPMENT_MAILBOX
    else "preventicons.gateways.ConsoleSmsGateway",
)
TWILIO_ACCOUNT_SID = env.str("TWILIO_ACCOUNT_SID", default="")
TWILIO_AUTH_TOKEN = env.str("TWILIO_AUTH_TOKEN", default="")
TWILIO_FROM_NUMBER = env.str("TWILIO_FROM_NUMBER", default="")
# Only for tests and staging: send the Twilio SDK's requests to another host (a local fake endpoint).
TWILIO_API_BASE_URL = env.str("TWILIO_API_BASE_URL", default="")
MESSAGE_MAX_ATTEMPTS = env.int("MESSAGE_MAX_ATTEMPTS", default=8)
# Sends per second per sending process and channel, within the providers' rates (0: unpaced).
MESSAGE_RATE_EMAIL_PER_SECOND = env.float("MESSAGE_RATE_EMAIL_PER_SECOND", default=20.0)
MESSAGE_RATE_SMS_PER_SECOND = env.float("MESSAGE_RATE_SMS_PER_SECOND", default=10.0)
MESSAGE_RETRY_BASE_SECONDS = env.int("MESSAGE_RETRY_BASE_SECONDS", default=30)
MESSAGE_RETRY_MAX_SECONDS = env.int("MESSAGE_RETRY_MAX_SECONDS", default=3600)
# Finished outbox messages leave a tombstone (the keyed hash of their key, nothing else) so that a retried
# job cannot send them again; tombstones go after this many days, at most twice as many.
MESSAGE_RETENTION_DAYS = env.int("MESSAGE_RETENTION_DAYS", default=90)

# --- Celery (preventicons/celery.py) ------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL or "filesystem://")
CELERY_BROKER_TRANSPORT_OPTIONS: dict = {}
if CELERY_BROKER_URL == "filesystem://":
    for _folder in ("queue", "processed", "control"):
        (VAR_DIR / "celery" / _folder).mkdir(parents=True, exist_ok=True)
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(VAR_DIR / "celery" / "queue"),
        "data_folder_out": str(VAR_DIR / "celery" / "queue"),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        # Without this kombu writes its broadcast exchange files into the current directory.
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
    }
else:
    # Longer than any countdown we use, so Redis does not redeliver a waiting task early.
    # A short connect timeout: queueing a message must not hang on an unreachable broker (the row waits).
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600, "socket_connect_timeout": 5}
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default="") or None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
# Keep LOGGING (and its redacting filter) in the worker: Celery would otherwise replace the root handlers.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TIMEZONE = "Europe/Amsterdam"
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_BEAT_SCHEDULE = {
    "send-due-messages": {"task": "preventicons.tasks.send_due_messages", "schedule": 30.0},
    "prune-sent-messages": {
        "task": "preventicons.tasks.prune_sent_messages",
        "schedule": crontab(hour=3, minute=15),
    },
    "clear-expired-sessions": {
        "task": "preventicons.tasks.clear_expired_sessions",
        "schedule": crontab(hour=3, minute=45),
    },
}
# --- Weekly round (scores/rounds.py): hourly, each organisation's round starts at its own weekday and hour.
CELERY_BEAT_SCHEDULE["weekly-rounds"] = {"task": "scores.tasks.run_due_rounds", "schedule": crontab(minute=2)}
# Participants per transaction: their links and their queued messages commit together.
WEEKLY_ROUND_BATCH_SIZE = 2000
# --- Week close (scores/weekclose.py): freeze the ended week's aggregates and count participation.
# Daily, so a beat that was down catches up; only Monday's run finds a new week to close. Just after midnight,
# before any organisation's weekly round of the new week starts, so a participant made inactive gets no link.
CELERY_BEAT_SCHEDULE["close-ended-weeks"] = {
    "task": "scores.tasks.close_ended_weeks",
    "schedule": crontab(hour=0, minute=30),
}
# Closed weeks in a row without a response before a participant becomes inactive
# (participants/participation.py).
INACTIVE_AFTER_WEEKS = env.int("INACTIVE_AFTER_WEEKS", default=4)
# Signals for help (scores/wellbeing.py): a score at or under the threshold, a fall of this many points from
# one week to the next, or this many scores in consecutive weeks each lower than the one before.
HELP_SCORE_THRESHOLD = env.int("HELP_SCORE_THRESHOLD", default=2)
HELP_DROP_POINTS = env.int("HELP_DROP_POINTS", default=2)
HELP_DROP_WEEKS = env.int("HELP_DROP_WEEKS", default=3)

# --- Help-request batch and nightly anonymisation (scores/wellbeing.py, participants/retention.py) ---------
# Queued help requests and pause changes are taken up every this many minutes, at fixed clock times (:00, :15,
# ...), all in one transaction in random order: nothing a dump can order pairs one with the tap before it.
HELP_REQUEST_BATCH_MINUTES = env.int("HELP_REQUEST_BATCH_MINUTES", default=15)
if not 1 <= HELP_REQUEST_BATCH_MINUTES <= 60:
    raise ImproperlyConfigured("HELP_REQUEST_BATCH_MINUTES is a number of minutes from 1 to 60.")
CELERY_BEAT_SCHEDULE["take-up-help-requests"] = {
    "task": "scores.tasks.take_up_help_requests",
    "schedule": crontab(minute=f"*/{HELP_REQUEST_BATCH_MINUTES}"),
}
# Nightly, after the week close (00:30) has marked who became inactive; README "Retention" gives the reasons.
CELERY_BEAT_SCHEDULE["anonymise-and-purge"] = {
    "task": "participants.tasks.run_retention",
    "schedule": crontab(hour=2, minute=30),
}
ANONYMISE_UNLISTED_AFTER_DAYS = env.int("ANONYMISE_UNLISTED_AFTER_DAYS", default=30)
ANONYMISE_INACTIVE_AFTER_DAYS = env.int("ANONYMISE_INACTIVE_AFTER_DAYS", default=365)
ANONYMISE_AFTER_CONTRACT_END_DAYS = env.int("ANONYMISE_AFTER_CONTRACT_END_DAYS", default=30)
EXPIRED_INVITATION_KEEP_DAYS = env.int("EXPIRED_INVITATION_KEEP_DAYS", default=30)
QUEUED_REQUEST_MAX_DAYS = env.int("QUEUED_REQUEST_MAX_DAYS", default=7)
for _name in (
    "ANONYMISE_UNLISTED_AFTER_DAYS",
    "ANONYMISE_INACTIVE_AFTER_DAYS",
    "ANONYMISE_AFTER_CONTRACT_END_DAYS",
    "EXPIRED_INVITATION_KEEP_DAYS",
    "QUEUED_REQUEST_MAX_DAYS",
):
    if globals()[_name] < 0:
        raise ImproperlyConfigured(f"{_name} is a number of days: 0 or more.")

# --- Casefiles (casefiles/): the casemanager's dashboard, trajectories and assignment ---------------------
# A help request promises a first contact within this many working days (Monday to Friday, Dutch public
# holidays excluded: casefiles/workdays.py).
DOSSIER_FIRST_CONTACT_WORKING_DAYS = env.int("DOSSIER_FIRST_CONTACT_WORKING_DAYS", default=2)
# A dossier with no note for this many days is listed for attention.
DOSSIER_QUIET_DAYS = env.int("DOSSIER_QUIET_DAYS", default=14)
# The dashboard flags a fall of HELP_DROP_POINTS or more between two consecutive weeks within this many weeks.
DOSSIER_DROP_WEEKS = env.int("DOSSIER_DROP_WEEKS", default=4)
# The kinds of trajectory a casemanager can start: code and label.
TRAJECTORY_KINDS = [
    ("intake", _("Intake")),
    ("coaching", _("Coaching")),
    ("counselling", _("Counselling")),
    ("reintegration", _("Re-integration support")),
]
for _name in ("DOSSIER_FIRST_CONTACT_WORKING_DAYS", "DOSSIER_QUIET_DAYS", "DOSSIER_DROP_WEEKS"):
    if globals()[_name] < 1:
        raise ImproperlyConfigured(f"{_name} is a number: 1 or more.")
# Retention after a dossier closes (casefiles/retention.py; README "Retention" gives the rules): notes per
# kind, and the link to the participant's scores and contact details.
NOTE_RETENTION_DAYS = {
    "intake": env.int("NOTE_RETENTION_DAYS_INTAKE", default=730),
    "session": env.int("NOTE_RETENTION_DAYS_SESSION", default=730),
    "evaluation": env.int("NOTE_RETENTION_DAYS_EVALUATION", default=730),
    "closing": env.int("NOTE_RETENTION_DAYS_CLOSING", default=730),
}
DOSSIER_UNLINK_AFTER_CLOSE_DAYS = env.int("DOSSIER_UNLINK_AFTER_CLOSE_DAYS", default=730)
if min(NOTE_RETENTION_DAYS.values()) < 0 or DOSSIER_UNLINK_AFTER_CLOSE_DAYS < 0:
    raise ImproperlyConfigured("Retention periods are numbers of days: 0 or more.")
CELERY_BEAT_SCHEDULE["casefiles-retention"] = {
    "task": "casefiles.tasks.run_retention",
    "schedule": crontab(hour=2, minute=45),
}
# The notary's ledger (notary/feed.py) takes up the day's facts after both nightly runs: their summary, the
# references retention forgot (so no fact names them again), trajectories, and the access log's head.
CELERY_BEAT_SCHEDULE["record-ledger"] = {
    "task": "notary.tasks.record_ledger",
    "schedule": crontab(hour=3, minute=0),
}
# Dossiers of organisations that had no linked casemanager at the help request wait; given out hourly.
CELERY_BEAT_SCHEDULE["assign-waiting-dossiers"] = {
    "task": "casefiles.tasks.assign_waiting_dossiers",
    "schedule": crontab(minute=7),
}

# Progress notes are queued sealed in the casefiles store and written to the notes store in batches, in
# random order (casefiles/notes.py): checked every NOTE_BATCH_MINUTES at fixed clock times, a batch is written
# once the queue holds notes of NOTE_BATCH_MINIMUM_DOSSIERS dossiers, or its oldest note has waited
# NOTE_BATCH_MAX_WAIT_MINUTES. More dossiers a batch mix more; a batch of one dossier pairs its note subject
# with its number. The casemanager sees a queued note at once: nothing waits on the batch.
NOTE_BATCH_MINUTES = env.int("NOTE_BATCH_MINUTES", default=5)
NOTE_BATCH_MINIMUM_DOSSIERS = env.int("NOTE_BATCH_MINIMUM_DOSSIERS", default=2)
NOTE_BATCH_MAX_WAIT_MINUTES = env.int("NOTE_BATCH_MAX_WAIT_MINUTES", default=15)
if not 1 <= NOTE_BATCH_MINUTES <= 60:
    raise ImproperlyConfigured("NOTE_BATCH_MINUTES is a number of minutes from 1 to 60.")
if NOTE_BATCH_MINIMUM_DOSSIERS < 1 or NOTE_BATCH_MAX_WAIT_MINUTES < 0:
    raise ImproperlyConfigured(
        "NOTE_BATCH_MINIMUM_DOSSIERS is 1 or more, NOTE_BATCH_MAX_WAIT_MINUTES 0 minutes or more."
    )
CELERY_BEAT_SCHEDULE["take-up-queued-notes"] = {
    "task": "casefiles.tasks.take_up_queued_notes",
    "schedule": crontab(minute=f"*/{NOTE_BATCH_MINUTES}"),
}

# --- Notary (notary/ledger.py): a signed tree head over the ledger every night, after the night's facts are
# in: the retention run (02:30) and the ledger feed (03:00). Idempotent: no new entries, no new head.
CELERY_BEAT_SCHEDULE["sign-ledger-tree-head"] = {
    "task": "notary.tasks.sign_tree_head",
    "schedule": crontab(hour=3, minute=40),
}
# --- The participant's sign-off and feedback (notary/signoffs.py, notary/feedback.py) ---------------------
# An ended trajectory is offered for sign-off on the participant's account page for this many weeks after
# the week it ended (a quarter): long enough to come back to it, short enough that an old one stops asking.
SIGN_OFF_WEEKS = env.int("SIGN_OFF_WEEKS", default=13)
if SIGN_OFF_WEEKS < 1:
    raise ImproperlyConfigured("SIGN_OFF_WEEKS is a number of weeks: 1 or more.")
# Feedback reaches the employer only this many at a time, or more: never fewer than five (DESIGN.md).
FEEDBACK_RELEASE_MINIMUM = env.int("FEEDBACK_RELEASE_MINIMUM", default=5)
if FEEDBACK_RELEASE_MINIMUM < 5:
    raise ImproperlyConfigured("FEEDBACK_RELEASE_MINIMUM is at least 5: no employer sees fewer at a time.")
# Queued sign-offs are taken up hourly, at a fixed minute. Nothing waits on them (the participant reads
# "noted", the ledger keeps only the week, feedback waits for five anyway), so a longer interval costs
# nothing, and it gathers more sign-offs into each shuffled transaction than the help requests' quarter hour.
CELERY_BEAT_SCHEDULE["take-up-sign-offs"] = {
    "task": "notary.tasks.take_up_sign_offs",
    "schedule": crontab(minute=22),
}

# --- A link's steps before its SMS code (preventicons.middleware.EvenLinkStepsMiddleware) -----------------
# Every step of an invitation link or a link from the account-link form up to its SMS code (opening it, the
# button that sends the code, a code, a new code) answers no sooner than this many seconds after the request:
# the work behind it depends on what the person did, and whoever holds the link must not time the difference.
# Far above either path's work.
LINK_STEP_SECONDS = env.float("LINK_STEP_SECONDS", default=0.4)

# --- Invitation schedule (participants/invitations.py) -------------------------------------------
# Every listed person gets the same fixed run, whatever they do: the invitation, then this many reminders,
# each this many days after the previous one at the same time of day (so on the same weekday). The
# invitation goes out at once on a weekday between these hours (Europe/Amsterdam), otherwise at the start of
# the next weekday's hours; never at a weekend. The beat checks every 15 minutes.
INVITATION_REMINDERS = env.int("INVITATION_REMINDERS", default=3)
INVITATION_REMINDER_INTERVAL_DAYS = env.int("INVITATION_REMINDER_INTERVAL_DAYS", default=7)
INVITATION_SEND_FROM_HOUR = env.int("INVITATION_SEND_FROM_HOUR", default=9)
INVITATION_SEND_UNTIL_HOUR = env.int("INVITATION_SEND_UNTIL_HOUR", default=17)
if not 0 <= INVITATION_SEND_FROM_HOUR < INVITATION_SEND_UNTIL_HOUR <= 24:
    raise ImproperlyConfigured("INVITATION_SEND_FROM_HOUR must come before INVITATION_SEND_UNTIL_HOUR")
CELERY_BEAT_SCHEDULE["invitation-schedule"] = {
    "task": "participants.tasks.send_due_invitations",
    "schedule": crontab(minute="*/15"),
}

# --- Language and time --------------------------------------------------------------------------
LANGUAGE_CODE = "nl"
LANGUAGES = [("nl", _("Dutch")), ("en", _("English"))]
LOCALE_PATHS = [BASE_DIR / "locale"]
TIME_ZONE = "Europe/Amsterdam"
USE_I18N = True
USE_TZ = True

STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if PRODUCTION
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}

# --- Security headers ---------------------------------------------------------------------------
# No third-party scripts, styles or fonts: nothing about a participant's visit leaves our origin.
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "font-src": ["'self'"],
        "connect-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    }
}
# Nothing to other sites (that would tell them someone uses Preventicons), the full address to our own origin:
# under "no-referrer" browsers send "Origin: null" with same-origin form posts and Django's CSRF check
# refuses every form (tests/browser shows it).
SECURE_REFERRER_POLICY = "same-origin"
# How many proxies of ours stand in front of the app; rate limits then key on the client address they
# forward in X-Forwarded-For instead of the proxy's own (preventicons/clients.py).
PROXY_COUNT = env.int("PREVENTICONS_PROXY_COUNT", default=0)
if PROXY_COUNT < 0:
    raise ImproperlyConfigured("PREVENTICONS_PROXY_COUNT is a number of proxies: 0 or more.")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
if PRODUCTION:
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_HSTS_SECONDS = 63072000
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SESSION_COOKIE_NAME = "__Host-sessionid"
    CSRF_COOKIE_NAME = "__Host-csrftoken"

# --- Logging: no log line carries a token, an address or a number (preventicons/logfilters.py) --
# One handler, redacting, for everything. Django's own defaults (django.utils.log.DEFAULT_LOGGING) stay
# attached unless each logger they configure is named here: the "django" logger's console handler would print
# unredacted paths in development ("Forbidden (CSRF cookie not set.): /i/<token>/" from django.security.csrf),
# its mail_admins handler would mail tracebacks, and django.server has a handler of its own. So "django" and
# "django.server" get ours and do not propagate (one line each); everything else reaches the root's. A Celery
# worker's redirected stdout (the celery.redirected logger) propagates to the root as well
# (CELERY_WORKER_HIJACK_ROOT_LOGGER is off, so Celery adds no handler of its own there).
_LOG_LEVEL = env.str("LOG_LEVEL", default="INFO")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "preventicons.logfilters.RedactFilter"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "filters": ["redact"]}},
    "root": {"handlers": ["console"], "level": _LOG_LEVEL},
    "loggers": {
        # django.request, django.security.* and django.db.backends log through "django".
        "django": {"handlers": ["console"], "level": "INFO", "propagate": False},
        # Django logs the request path on 4xx/5xx and every request in runserver; our paths carry tokens.
        "django.server": {"handlers": ["console"], "level": "INFO", "propagate": False},
        "django.request": {"handlers": ["console"], "level": "WARNING", "propagate": False},
        "celery.task": {"handlers": ["console"], "level": _LOG_LEVEL, "propagate": False},
        # The Twilio SDK logs every API request and answer at INFO: lines only a text that really goes out
        # writes, where a weekly message with nobody to send to (a stand-in) writes none, so a run that ends
        # one told the operator which it was (review 12). Its warnings and errors still reach the log.
        "twilio": {"level": "WARNING"},
        # Celery gives a logger without handlers one of its own (unredacted, on stderr): these have ours.
        "multiprocessing": {"handlers": ["console"], "level": "WARNING", "propagate": False},
    },
}
