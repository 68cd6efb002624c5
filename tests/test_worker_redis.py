"""Each pytest-xdist worker talks to a Redis database of its own (tests/conftest.py)."""

from __future__ import annotations

import os

import pytest
from django.conf import settings

from tests.conftest import worker_redis_url


def test_outside_xdist_the_url_is_unchanged() -> None:
    assert worker_redis_url("redis://127.0.0.1:6379/14", None) == "redis://127.0.0.1:6379/14"


def test_each_worker_adds_its_index_to_the_base_database() -> None:
    assert worker_redis_url("redis://127.0.0.1:6379/8", "gw0") == "redis://127.0.0.1:6379/8"
    assert worker_redis_url("redis://127.0.0.1:6379/8", "gw1") == "redis://127.0.0.1:6379/9"
    assert worker_redis_url("redis://:pw@redis.local:6380", "gw2") == "redis://:pw@redis.local:6380/2"


def test_a_worker_beyond_the_last_database_is_refused_with_a_clear_message() -> None:
    with pytest.raises(pytest.UsageError, match="Redis database 16"):
        worker_redis_url("redis://127.0.0.1:6379/14", "gw2")


@pytest.mark.skipif(not os.environ.get("REDIS_URL"), reason="REDIS_URL is not set")
def test_this_process_uses_the_database_of_its_worker() -> None:
    expected = worker_redis_url(os.environ["REDIS_URL"], None)
    assert settings.REDIS_URL == expected == settings.CACHES["default"]["LOCATION"]
