"""What a command imports before it does anything: every command pays for it on every run, and
at a million rows it is a visible part of `etl apply`'s time. Libraries only some commands or
some steps use are imported where they run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

# Imported where they run: numpy where the source's pages are hashed (a verified apply, a plan
# against fingerprints), not by the CLI itself.
NOT_AT_START = ["numpy"]


@pytest.mark.parametrize("module", NOT_AT_START)
def test_the_cli_starts_without(module):
    found = subprocess.run(
        [sys.executable, "-c", f"import sys, etl.cli; print({module!r} in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert found.stdout.strip() == "False"


# The installed command ends without tearing the interpreter down (cli._exit_now): what it prints
# must still all arrive, its exit code must be the command's, and its atexit work must still run
# (test_clear_errors: the spill directory is removed after a failed apply).
ETL = Path(sys.executable).parent / "etl"
SCHEMA = Path(__file__).parent.parent / "schemas" / "etl-spec.schema.json"


def test_the_installed_command_prints_all_of_its_output_into_a_pipe():
    done = subprocess.run([str(ETL), "schema"], capture_output=True, text=True)
    assert done.returncode == 0
    assert done.stdout == SCHEMA.read_text()  # all of it, through a pipe
    assert done.stderr == ""


@pytest.mark.parametrize(
    ("arguments", "code", "said"),
    [
        (["validate", "nope.yaml"], 1, "Error: cannot read spec file"),
        (["apply"], 2, "Missing argument"),
        (["frobnicate"], 2, "No such command"),
    ],
)
def test_the_installed_command_exits_with_the_commands_code(tmp_path, arguments, code, said):
    done = subprocess.run([str(ETL), *arguments], capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == code
    assert said in done.stderr
