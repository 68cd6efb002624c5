# The Preventicons image: web (gunicorn), worker and beat (celery) and the migrate step all run from it.
# Build: docker compose build   (or: docker build -t preventicons:latest .)

FROM python:3.11-slim AS build
ENV PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/venv/bin:$PATH
RUN apt-get update \
    && apt-get install -y --no-install-recommends gettext \
    && rm -rf /var/lib/apt/lists/*
RUN python -m venv /opt/venv
WORKDIR /app

# The pinned dependencies first, from pyproject.toml alone, so a code change does not reinstall them. With
# no source beside it this installs the project's metadata and its dependencies; the code itself runs from
# /app (PYTHONPATH below), where templates/, static/ and locale/ sit beside it as the settings expect.
COPY pyproject.toml ./
RUN pip install .

COPY . .
RUN if ls locale/*/LC_MESSAGES/*.po >/dev/null 2>&1; then python manage.py compilemessages -v0; fi
# Static files are collected into the image with the production storage (hashed names, compressed).
# The values below exist only for this command: nothing connects to them and none is kept in the image.
RUN PREVENTICONS_ENV=production \
    PREVENTICONS_VAR_DIR=/app/var \
    DJANGO_SECRET_KEY=collectstatic-only-this-is-not-a-secret-and-is-never-used-at-run-time \
    DATABASE_URL=postgres://build@localhost/unused \
    NOTES_DATABASE_URL=postgres://build@localhost/unused \
    CASEFILES_DATABASE_URL=postgres://build@localhost/unused \
    python manage.py collectstatic --no-input -v0 \
    && rm -rf /app/var/celery


FROM python:3.11-slim
ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PYTHONPATH=/app \
    PATH=/opt/venv/bin:$PATH \
    PREVENTICONS_ENV=production \
    PREVENTICONS_VAR_DIR=/app/var
# A fixed uid, so the key file on the host can be given to exactly this user (see README, docker compose).
RUN groupadd --system --gid 10001 preventicons \
    && useradd --system --uid 10001 --gid preventicons --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin preventicons
COPY --from=build /opt/venv /opt/venv
COPY --from=build /app /app
# The code is read-only for the process; only var/ (beat's schedule) is its own.
RUN chown -R preventicons:preventicons /app/var
WORKDIR /app
USER preventicons
EXPOSE 8000

# No access log: request paths carry invitation tokens, and no log line may hold a whole token.
CMD ["gunicorn", "preventicons.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3", "--no-control-socket"]
