from django.contrib import admin
from django.urls import include, path
from django.views.i18n import set_language
from two_factor.admin import AdminSiteOTPRequired
from two_factor.urls import urlpatterns as two_factor_patterns

from preventicons import views

# The Django admin asks for a second factor too, like every other staff page.
admin.site.__class__ = AdminSiteOTPRequired

urlpatterns = [
    path("", views.home, name="home"),
    path("staff/", views.staff_home, name="staff-home"),
    path("i18n/setlang/", set_language, name="set_language"),
    path("", include("participants.urls")),
    path("", include(two_factor_patterns)),
    path("admin/", admin.site.urls),
]
