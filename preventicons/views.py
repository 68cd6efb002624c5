"""Platform pages: the public home page and the staff landing page."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render

from preventicons.roles import roles_of, staff_required


def home(request: HttpRequest) -> HttpResponse:
    return render(request, "preventicons/home.html")


@staff_required()
def staff_home(request: HttpRequest) -> HttpResponse:
    return render(request, "preventicons/staff_home.html", {"roles": sorted(roles_of(request.user))})
