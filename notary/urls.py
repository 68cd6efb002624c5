"""The auditor's pages under /notary/, the employer's attestations and feedback, the participant's sign-off,
and the public verification of attestations at /verify/."""

from __future__ import annotations

app_name = "notary"

urlpatterns: list = []
