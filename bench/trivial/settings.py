"""Bench-only settings: the product's settings with a URLconf that adds one trivial view (bench/trivial)."""

from preventicons.settings import *  # noqa: F403

ROOT_URLCONF = "bench.trivial.urls"
