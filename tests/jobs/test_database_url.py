"""The PostgreSQL driver loads only for a server whose jobs use PostgreSQL."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from whisperd.jobs.database_url import is_postgres_url

LOADED_DRIVERS = """
import sys
from pathlib import Path
import whisperd.app, whisperd.cli
from whisperd.jobs.opening import check_jobs
from whisperd.config import Settings
settings = Settings(_env_file=None, data_dir=sys.argv[1])
check_jobs(settings)
print(sorted({name.split(".")[0] for name in sys.modules if name.startswith("psycopg")}))
"""


def test_server_with_sqlite_jobs_never_loads_the_postgres_driver(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", LOADED_DRIVERS, str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert done.stdout.strip() == "[]", done.stdout + done.stderr


@pytest.mark.parametrize(
    ("url", "postgres"),
    [
        ("postgresql://whisperd@db:5432/jobs", True),
        ("postgres://db/jobs", True),
        ("sqlite:///var/lib/whisperd/jobs.sqlite3", False),
        ("mysql://db/jobs", False),
        (None, False),
    ],
)
def test_which_urls_name_postgres(url: str | None, postgres: bool) -> None:
    assert is_postgres_url(url) is postgres
