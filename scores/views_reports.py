"""The employer's reports under /reports/: the dashboard, its CSV, a printable page and the threshold setting.

Thin: scores.reports reads and decides, scores.disclosure says what may be shown. Every number on these pages
comes from a disclosure Cell, which holds only what may be shown, so a page, the CSV and the printable page
cannot disagree and none of them can show a withheld figure. Employer staff see their own organisation only;
any other organisation's pages answer 404, exactly like one that does not exist. Platform admins see all.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django import forms
from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.utils.formats import number_format
from django.utils.functional import Promise
from django.utils.translation import gettext as _
from django.utils.translation import gettext_lazy
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_GET, require_http_methods

from participants.contact import FORMULA_STARTS
from participants.models import Organisation, StaffUser
from preventicons.roles import Role, has_role, organisation_of, staff_required
from scores import reports
from scores.disclosure import COMPARISON_ORGANISATIONS, Cell, Shown, Why
from scores.reportchart import Series, trend_chart
from scores.reports import Level, Report


def _organisation(request: HttpRequest, organisation_id: int) -> Organisation:
    if has_role(request.user, Role.ADMIN):
        return get_object_or_404(Organisation, pk=organisation_id)
    mine = organisation_of(request.user)
    if mine.pk != organisation_id:
        raise Http404
    return mine


def _level(name: str) -> Level:
    try:
        return Level(name)
    except ValueError:
        raise Http404 from None


def _staff(request: HttpRequest) -> StaffUser:
    user = request.user
    assert isinstance(user, StaffUser)  # staff_required let only a verified staff login through
    return user


# --- what a cell says ---


def band_text(lower: int | None) -> str:
    if lower is None:
        return ""
    if lower == 75:
        return _("75% or more")
    # The same in Dutch and English: nothing to translate.
    return f"{lower}\N{EN DASH}{lower + 25}%"


# Why a number is missing, in full and in a few words (the tables of many periods, with a legend below).
# The words never say which rule withheld a number where that would tell something (PROTECT is one reason).
REASONS: dict[Why, tuple[Promise, Promise]] = {
    Why.FEW: (gettext_lazy("fewer than %(threshold)d answers"), gettext_lazy("under %(threshold)d")),
    Why.FOLDED: (gettext_lazy("counted in “Other departments”"), gettext_lazy("in other departments")),
    Why.PARTIAL: (gettext_lazy("not every week of this period could be shown"), gettext_lazy("incomplete")),
    Why.COMPARISON: (
        gettext_lazy("fewer than %(count)d other organisations to compare with"),
        gettext_lazy("too few to compare"),
    ),
    Why.WAITING: (
        gettext_lazy("waiting until every organisation has closed this week"),
        gettext_lazy("waiting"),
    ),
    Why.PROTECT: (
        gettext_lazy("withheld: it would reveal a smaller group or what (nearly) everyone answered"),
        gettext_lazy("withheld"),
    ),
}


def reason_text(why: Why | None, *, threshold: int, short: bool = False) -> str:
    """The plain words for a withheld number ("" for none)."""
    if why is None:
        return ""
    text = str(REASONS[why][1 if short else 0])
    return text % {"threshold": threshold, "count": COMPARISON_ORGANISATIONS} if "%(" in text else text


@dataclass(frozen=True)
class ShownCell:
    """One cell as the page, the print and the CSV write it."""

    answers: str
    average: str
    hard: str
    participation: str
    note: str
    short_note: str
    withheld: bool

    @property
    def short(self) -> str:
        """For the trend table: the average and the answers, or the reason."""
        if self.average:
            return _("%(average)s (%(answers)s)") % {"average": self.average, "answers": self.answers}
        if self.answers:
            return _("%(answers)s answers") % {"answers": self.answers}
        return "\N{EN DASH}"


def present(cell: Cell | None, *, threshold: int, localize: bool = True) -> ShownCell:
    if cell is None:
        return ShownCell("", "", "", "", _("no closed week in this period"), _("no week"), True)

    def decimal(value: Decimal | None) -> str:
        if value is None:
            return ""
        return number_format(value, decimal_pos=1) if localize else f"{value:.1f}"

    why = cell.why if cell.shown is not Shown.FIGURES else None
    return ShownCell(
        answers="" if cell.answers is None else str(cell.answers),
        average=decimal(cell.average),
        hard="" if cell.hard_percent is None else f"{cell.hard_percent}%",
        participation=band_text(cell.participation),
        note=reason_text(why, threshold=threshold),
        short_note=reason_text(why, threshold=threshold, short=True),
        withheld=cell.shown is not Shown.FIGURES,
    )


@dataclass(frozen=True)
class ShownRow:
    label: str
    is_organisation: bool
    latest: ShownCell
    cells: list[ShownCell]


def _context(report: Report) -> dict[str, object]:
    threshold = report.threshold
    rows = [
        ShownRow(
            label=row.label,
            is_organisation=row.is_organisation,
            latest=present(row.cells[-1] if row.cells else None, threshold=threshold),
            cells=[present(cell, threshold=threshold) for cell in row.cells],
        )
        for row in report.rows
    ]
    organisation_cells = report.rows[0].cells if report.rows else []
    series = [Series(_("Your organisation"), [cell.average if cell else None for cell in organisation_cells])]
    comparisons: list[tuple[str, list[ShownCell]]] = []
    if report.sector is not None:
        series.append(Series(_("Your sector"), [cell.average for cell in report.sector]))
        comparisons.append((_("Your sector"), [present(cell, threshold=threshold) for cell in report.sector]))
    series.append(Series(_("All organisations"), [cell.average for cell in report.everyone]))
    comparisons.append(
        (_("All organisations"), [present(cell, threshold=threshold) for cell in report.everyone])
    )
    labels = [period.label for period in report.periods]
    chart = (
        trend_chart(
            [period.key for period in report.periods],
            series,
            title=_("Average answer per period"),
            id_prefix="trend",
        )
        if report.periods
        else None
    )
    return {
        "report": report,
        "organisation": report.organisation,
        "level": report.level,
        "levels": list(Level),
        "threshold": threshold,
        "period_labels": labels,
        "latest_label": labels[-1] if labels else "",
        "rows": rows,
        "chart": chart,
        "chart_rows": list(
            zip(
                labels,
                [present(cell, threshold=threshold) for cell in organisation_cells],
                *[cells for _label, cells in comparisons],
                strict=True,
            )
        ),
        "comparison_labels": [label for label, _cells in comparisons],
        "has_sector": report.sector is not None,
    }


# --- pages ---


@never_cache
@require_GET
@staff_required(Role.EMPLOYER, Role.ADMIN)
def index(request: HttpRequest) -> HttpResponse:
    """The employer goes to its own reports; the platform admin chooses an organisation."""
    if not has_role(request.user, Role.ADMIN):
        organisation = organisation_of(request.user)
        return redirect("scores:report", organisation_id=organisation.pk, level=Level.QUARTER)
    organisations = Organisation.objects.order_by("name")
    return render(request, "scores/reports/index.html", {"organisations": organisations})


@never_cache
@require_GET
@staff_required(Role.EMPLOYER, Role.ADMIN)
def dashboard(request: HttpRequest, organisation_id: int, level: str) -> HttpResponse:
    organisation = _organisation(request, organisation_id)
    report = reports.build_report(organisation, _level(level))
    return render(request, "scores/reports/dashboard.html", _context(report))


@never_cache
@require_GET
@staff_required(Role.EMPLOYER, Role.ADMIN)
def printable(request: HttpRequest, organisation_id: int, level: str) -> HttpResponse:
    organisation = _organisation(request, organisation_id)
    report = reports.build_report(organisation, _level(level))
    return render(request, "scores/reports/print.html", _context(report))


def spreadsheet_safe(value: str) -> str:
    """A text a spreadsheet shows as text: a leading formula character gets an apostrophe (CSV injection)."""
    if value and (value.startswith(FORMULA_STARTS) or value[0] in "\t\r"):
        return "'" + value
    return value


CSV_COLUMNS = (
    gettext_lazy("period"),
    gettext_lazy("first week"),
    gettext_lazy("group"),
    gettext_lazy("answers"),
    gettext_lazy("average (1-5)"),
    gettext_lazy("hard weeks (1 or 2)"),
    gettext_lazy("participation"),
    gettext_lazy("note"),
)


@never_cache
@require_GET
@staff_required(Role.EMPLOYER, Role.ADMIN)
def export_csv(request: HttpRequest, organisation_id: int, level: str) -> HttpResponse:
    """The report's cells at the page's precision, one line per period and group; comparisons last."""
    organisation = _organisation(request, organisation_id)
    report = reports.build_report(organisation, _level(level))
    response = HttpResponse(content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="report-{organisation.pk}-{report.level}.csv"'
    writer = csv.writer(response)
    writer.writerow([str(column) for column in CSV_COLUMNS])
    groups: list[tuple[str, list[Cell | None]]] = [(row.label, list(row.cells)) for row in report.rows]
    if report.sector is not None:
        groups.append((_("Your sector"), list(report.sector)))
    groups.append((_("All organisations"), list(report.everyone)))
    for index, period in enumerate(report.periods):
        for label, cells in groups:
            shown = present(cells[index], threshold=report.threshold, localize=False)
            writer.writerow(
                [
                    spreadsheet_safe(value)
                    for value in (
                        period.label,
                        period.weeks[0].isoformat(),
                        label,
                        shown.answers,
                        shown.average,
                        shown.hard,
                        shown.participation,
                        shown.note,
                    )
                ]
            )
    return response


class ThresholdForm(forms.Form):
    """The new threshold: higher than now, at most reports.MAXIMUM_REPORT_THRESHOLD."""

    def __init__(self, *args: Any, current: int, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["threshold"] = forms.IntegerField(
            label=_("New smallest number of answers per figure"),
            min_value=current + 1,
            max_value=reports.MAXIMUM_REPORT_THRESHOLD,
            help_text=_(
                "Now %(current)d. It can only be raised: a lower number would show groups that were withheld"
                " before."
            )
            % {"current": current},
            error_messages={
                "min_value": _("It can only be raised: enter at least %(limit_value)s."),
                "max_value": _("Enter at most %(limit_value)s."),
            },
        )


@never_cache
@require_http_methods(["GET", "POST"])
@staff_required(Role.EMPLOYER, Role.ADMIN)
def report_settings(request: HttpRequest, organisation_id: int) -> HttpResponse:
    organisation = _organisation(request, organisation_id)
    current = reports.threshold_of(organisation.pk)
    form = ThresholdForm(request.POST or None, current=current)
    if request.method == "POST" and form.is_valid():
        try:
            reports.raise_threshold(organisation, form.cleaned_data["threshold"], by=_staff(request))
        except ValueError:
            # Someone raised it further meanwhile: nothing changed, and the page shows the new value.
            messages.error(
                request,
                _("Someone raised the threshold meanwhile, to this number or higher. Nothing was saved."),
            )
        else:
            # Decided now, while the employer waits for this page, rather than on the next dashboard.
            reports.prepare_cells(organisation)
            messages.success(request, _("The threshold was raised."))
        return redirect(reverse("scores:report-settings", kwargs={"organisation_id": organisation.pk}))
    context = {
        "organisation": organisation,
        "threshold": current,
        "form": form,
        "changes": reports.setting_changes(organisation.pk),
        "maximum": reports.MAXIMUM_REPORT_THRESHOLD,
    }
    return render(request, "scores/reports/settings.html", context, status=400 if form.errors else 200)
