from django.contrib import admin
from django.contrib.auth.views import LogoutView
from django.urls import include, path
from django.views.decorators.csrf import csrf_exempt
from django.views.i18n import set_language
from two_factor.plugins.phonenumber.views import PhoneDeleteView
from two_factor.views import (
    BackupTokensView,
    ProfileView,
    QRGeneratorView,
    SetupCompleteView,
)

from preventicons import views
from preventicons.roles import PlatformAdminSite, reauthentication_required, second_factor_required

# The Django admin asks for a second factor and the admin role, like every other staff page.
admin.site.__class__ = PlatformAdminSite

# two-factor's URLs under its own names, composed here rather than included whole: staff set up a TOTP
# app first (SMS only as a backup phone), and there is no page to switch two-factor off. The login's codes
# count once (preventicons/staffauth.py); what changes how an account logs in asks for the password and a
# current code again first.
two_factor_patterns = [
    path("account/login/", views.StaffLoginView.as_view(), name="login"),
    path("account/two_factor/setup/", views.StaffSetupView.as_view(), name="setup"),
    path("account/two_factor/qrcode/", QRGeneratorView.as_view(), name="qr"),
    path("account/two_factor/setup/complete/", SetupCompleteView.as_view(), name="setup_complete"),
    path(
        "account/two_factor/backup/tokens/",
        reauthentication_required(BackupTokensView.as_view()),
        name="backup_tokens",
    ),
    path("account/two_factor/", second_factor_required(ProfileView.as_view()), name="profile"),
    path(
        "account/two_factor/reauthenticate/",
        second_factor_required(views.ReauthenticateView.as_view()),
        name="reauth",
    ),
    path(
        "account/password/",
        reauthentication_required(views.StaffPasswordChangeView.as_view()),
        name="password_change",
    ),
    path(
        "account/two_factor/phone/register/",
        reauthentication_required(views.StaffPhoneSetupView.as_view()),
        name="phone_create",
    ),
    path(
        "account/two_factor/phone/unregister/<int:pk>/",
        reauthentication_required(PhoneDeleteView.as_view()),
        name="phone_delete",
    ),
]

urlpatterns = [
    path("", views.home, name="home"),
    path("staff/", views.staff_home, name="staff-home"),
    # Development only: answers 404 whenever DEBUG is off (the view checks at every request).
    path("dev/mailbox/", views.development_mailbox, name="dev-mailbox"),
    path("account/logout/", LogoutView.as_view(), name="logout"),
    # No CSRF check on the language switch: token pages send no Referer (so a browser posts with Origin:
    # null, which Django's check refuses), and a forged post can do no more than change the page language.
    path("i18n/setlang/", csrf_exempt(set_language), name="set_language"),
    path("", include("participants.urls")),
    path("", include("scores.urls")),
    path("", include("casefiles.urls")),
    path("", include("notary.urls")),
    path("", include((two_factor_patterns, "two_factor"))),
    path("admin/", admin.site.urls),
]
