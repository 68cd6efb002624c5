"""Signals the platform sends to the apps above it (notary), which it never imports.

``keys_rotated``
    Sent by ``preventicons.keyrotation.activate_key`` when a key becomes the one new values of its purpose
    are sealed under: while the key file is locked for the edit, before it is written. A receiver that
    raises stops the activation (the file is left as it was), so a rotation is never carried out without
    its record; a receiver that succeeded for an activation whose file write then failed meets the same
    activation again when the operator repeats it, so receivers must be idempotent. Not sent when the key
    already was the active one. Keyword arguments:

    - ``purpose`` (str): the keyring, one of ``preventicons.keys.ENCRYPTION_PURPOSES``.
    - ``key_id`` (str): the id of the key now active (an id, never key material).
    - ``day`` (date): the day of the activation, in the project's time zone.
"""

from __future__ import annotations

from django.dispatch import Signal

keys_rotated = Signal()
