"""The Anoniem Garant ledger (database 3): append-only trajectory facts, hash-chained."""

from __future__ import annotations

from django.db import models


class LedgerEntry(models.Model):
    sequence = models.PositiveBigIntegerField(unique=True)
    previous_hash = models.CharField(max_length=64)
    entry_hash = models.CharField(max_length=64, unique=True)
    payload = models.JSONField()

    class Meta:
        ordering = ["sequence"]

    def __str__(self) -> str:
        return f"ledger entry {self.sequence}"
