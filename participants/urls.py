"""Participant-facing and employer-import URLs. Each area adds its patterns in its own block."""

from django.urls import path

from participants.views import account as account_views
from participants.views import enrolment as enrolment_views
from participants.views import importing as importing_views

app_name = "participants"

urlpatterns: list = [
    # --- enrolment (invitation link, consent, codes, decline) ---
    path("i/<str:token>/", enrolment_views.open_invitation, name="invitation"),
    path("i/<str:token>/decline/", enrolment_views.open_decline_link, name="invitation-decline"),
    path("enrol/", enrolment_views.landing, name="enrol"),
    path("enrol/open/", enrolment_views.open_with_code, name="enrol-open"),
    path("enrol/next/", enrolment_views.next_step, name="enrol-next"),
    path("enrol/consent/", enrolment_views.consent, name="enrol-consent"),
    path("enrol/details/", enrolment_views.details, name="enrol-details"),
    path("enrol/codes/", enrolment_views.codes, name="enrol-codes"),
    path("enrol/codes/resend/", enrolment_views.resend, name="enrol-resend"),
    path("enrol/new-link/", enrolment_views.new_link, name="enrol-new-link"),
    path("enrol/decline/", enrolment_views.decline, name="enrol-decline"),
    path("enrol/welcome/", enrolment_views.welcome, name="enrol-welcome"),
    path("staff/invitations/", enrolment_views.invitations_page, name="invitations"),
    path("staff/invitations/send/", enrolment_views.send_invitations, name="send-invitations"),
    # --- account (corrections, data, export, pause, stop) ---
    path("me/", account_views.overview, name="account"),
    path("me/export.json", account_views.export, name="account-export"),
    path("me/pause/", account_views.pause, name="account-pause"),
    path("me/close/", account_views.close, name="account-close"),
    path("me/rejoin/", account_views.rejoin, name="account-rejoin"),
    path("me/casemanager/", account_views.another_casemanager, name="account-casemanager"),
    path("me/change/", account_views.change, name="account-change"),
    path("me/change/confirm/", account_views.change_confirm, name="account-change-confirm"),
    path("me/change/resend/", account_views.change_resend, name="account-change-resend"),
    path("me/stop/", account_views.stop, name="account-stop"),
    path("me/stop/confirm/", account_views.stop_confirm, name="account-stop-confirm"),
    path("me/stop/resend/", account_views.stop_resend, name="account-stop-resend"),
    path("me/stopped/", account_views.stopped, name="account-stopped"),
    path("me/link/", account_views.link_request, name="account-link"),
    path("me/link/open/", account_views.link_confirm, name="account-link-confirm"),
    path("me/link/code/", account_views.link_code, name="account-code"),
    path("me/link/code/resend/", account_views.link_code_resend, name="account-code-resend"),
    path("me/link/<str:token>/", account_views.link_open, name="account-link-open"),
    # --- address-list import (employer/admin) ---
    path("staff/import/", importing_views.import_addresses, name="import"),
]
