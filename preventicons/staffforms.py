"""Forms for staff second factors: the login's code steps and re-authentication, all through staffauth."""

from __future__ import annotations

from typing import Any

from django import forms
from django.utils.translation import gettext_lazy as _
from django_otp.forms import otp_verification_failed
from django_otp.models import Device
from two_factor.forms import AuthenticationTokenForm, BackupTokenForm

from preventicons.staffauth import Verdict, verify_second_factor

LOCKED_MESSAGE = _(
    "Too many wrong codes: this account is locked for now. Try again later, "
    "or ask a platform administrator to release it."
)


class StaffTokenForm(AuthenticationTokenForm):
    """two-factor's code step, verified by staffauth: single use under parallel requests, failures counted."""

    def _verify_token(self, user: Any, token: str, device: Device | None = None) -> Device:
        if device is None:
            raise forms.ValidationError(self.otp_error_messages["device_required"], code="device_required")
        verdict = verify_second_factor(user=user, device=device, token=token)
        if verdict is Verdict.LOCKED:
            raise forms.ValidationError(LOCKED_MESSAGE, code="locked")
        if verdict is not Verdict.VERIFIED:
            otp_verification_failed.send(sender=self.__class__, user=user)
            raise forms.ValidationError(self.otp_error_messages["invalid_token"], code="invalid_token")
        return device


class StaffBackupTokenForm(StaffTokenForm):
    """A backup code: letters and digits, consumed by one DELETE."""

    # two-factor's own label, translated by its own catalogue ("Token" is a word of its pages, not ours).
    otp_token = forms.CharField(label=BackupTokenForm.base_fields["otp_token"].label, max_length=16)


class ReauthenticationForm(forms.Form):
    """The password and a current code again, before a change to how this account logs in."""

    wrong_message = _("The password or the code is not right.")

    password = forms.CharField(label=_("Password"), strip=False, widget=forms.PasswordInput)
    otp_token = forms.CharField(
        label=_("Code from your authenticator app"),
        max_length=16,
        widget=forms.TextInput(attrs={"autocomplete": "one-time-code", "inputmode": "numeric"}),
    )
