"""How fast a list of 10,000 employees imports into PostgreSQL: fresh, again unchanged, again changed.

make bench                           (every benchmark)
python -m bench.import_addresses     (this one; DATABASE_URL names the server, default 127.0.0.1)
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Callable
from typing import Any

from bench import bench_organisation, prepare

ROWS = 10_000
DEPARTMENTS = 40


def address_list(rows: int, *, name_prefix: str = "Medewerker", department_prefix: str = "Afdeling") -> bytes:
    """A list as Excel writes it: UTF-8 with BOM, semicolons, CRLF, Dutch notations of mobile numbers."""
    lines = ["Naam;E-mail;Mobiel;Afdeling"]
    for i in range(rows):
        mobile = f"06-{20000000 + i:08d}" if i % 2 else f"+31 6 {20000000 + i:08d}"
        lines.append(
            f"{name_prefix} {i};medewerker{i}@example.nl;{mobile};{department_prefix} {i % DEPARTMENTS}"
        )
    return b"\xef\xbb\xbf" + "\r\n".join(lines).encode("utf-8") + b"\r\n"


def timed(work: Callable[[], Any]) -> tuple[Any, float, float]:
    """The result, the wall-clock seconds and this process's CPU seconds (PostgreSQL's work not included)."""
    started, cpu = time.perf_counter(), time.process_time()
    result = work()
    return result, time.perf_counter() - started, time.process_time() - cpu


def report(label: str, rows: int, seconds: float, cpu: float, what: str) -> None:
    print(
        f"  {label:<40} {seconds:7.2f} s {rows / seconds:9,.0f} rows/s  (Python CPU {cpu:5.2f} s)  {what}",
        flush=True,
    )


def main() -> None:
    prepare()
    from django.contrib.auth.models import Group
    from django.db import connection

    from participants.importing import import_address_list, parse_address_list
    from participants.models import StaffUser
    from preventicons.roles import Role

    # The import logs one line per run; the figures below say it better.
    logging.getLogger("participants.importing").setLevel(logging.WARNING)
    fresh = address_list(ROWS)
    changed = address_list(ROWS, name_prefix="Collega", department_prefix="Team")
    print(
        f"Importing {ROWS:,} rows ({len(fresh) / 1024 / 1024:.1f} MB) into PostgreSQL "
        f"{getattr(connection, 'pg_version', 0) // 10000} ({connection.settings_dict['NAME']})",
        flush=True,
    )
    with bench_organisation("import") as organisation:
        employer = StaffUser.objects.create_user(
            username=f"bench-{secrets.token_hex(4)}", password=None, organisation=organisation
        )
        employer.groups.add(Group.objects.get(name=Role.EMPLOYER.value))

        def run_import(data: bytes) -> Any:
            return import_address_list(organisation=organisation, data=data, full_list=True, by=employer)

        try:
            _rows, seconds, cpu = timed(lambda: parse_address_list(fresh))
            report("parse and validate only", ROWS, seconds, cpu, "no database")
            result, seconds, cpu = timed(lambda: run_import(fresh))
            assert result.created == ROWS, result
            report("fresh import", ROWS, seconds, cpu, f"{result.created:,} created")
            result, seconds, cpu = timed(lambda: run_import(fresh))
            assert result.unchanged == ROWS, result
            report("re-import, same list", ROWS, seconds, cpu, f"{result.unchanged:,} unchanged")
            result, seconds, cpu = timed(lambda: run_import(changed))
            assert result.updated == ROWS, result
            report(
                "re-import, every name and department new", ROWS, seconds, cpu, f"{result.updated:,} updated"
            )
        finally:
            employer.delete()
    print(f"  (bench rows removed; load average at the end {os.getloadavg()[0]:.1f})", flush=True)


if __name__ == "__main__":
    main()
