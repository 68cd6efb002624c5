import os

from django.core.wsgi import get_wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "preventicons.settings")
application = get_wsgi_application()

# Gunicorn runs no system checks: refuse to serve a single request with a missing or malformed key set.
from preventicons.keys import get_key_set  # noqa: E402

get_key_set()
