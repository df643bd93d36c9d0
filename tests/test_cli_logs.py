"""``whisperd serve``'s log lines: CTranslate2's native lines in the same JSON as the rest."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

CODE = """
import logging, os, sys
import ctranslate2
from whisperd.cli_logs import server_logging

with server_logging("info", sys.argv[2]):
    ctranslate2.set_log_level(logging.INFO)  # CTranslate2 says which CPU features it uses
    ctranslate2.models.Whisper(sys.argv[1], device="cpu", compute_type="int8")
    os.write(2, b"a native line of no known form\\n")
    logging.getLogger("whisperd.test").info("still json")
print("standard error is back", file=sys.stderr)
"""


def test_native_standard_error_is_logged_as_json_lines(real_model: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CODE, str(real_model), "json"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    *logged, last = done.stderr.strip().splitlines()
    assert last == "standard error is back"
    lines = [json.loads(line) for line in logged]
    native = [line for line in lines if line["logger"] == "ctranslate2"]
    assert native, lines
    assert {line["level"] for line in native} == {"INFO"}
    assert any(line["message"].startswith("CPU: ") for line in native), native
    assert all(not line["message"].startswith("[") for line in native)
    other = [line for line in lines if line["logger"] == "stderr"]
    assert [(line["level"], line["message"]) for line in other] == [
        ("WARNING", "a native line of no known form")
    ]
    assert "still json" in [line["message"] for line in lines]
    assert all(line["thread"] == "whisperd-stderr" for line in native + other)


def test_text_logs_leave_native_standard_error_as_it_is(real_model: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", CODE, str(real_model), "text"],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    lines = done.stderr.strip().splitlines()
    assert any("[ctranslate2]" in line and "[info] CPU: " in line for line in lines), lines
    assert "a native line of no known form" in lines
    assert any(line.endswith("INFO [- - -] whisperd.test: still json") for line in lines), lines
