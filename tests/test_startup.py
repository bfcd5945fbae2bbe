"""What a command imports before it does anything: every command pays for it on every run, and
at a million rows it is a visible part of `etl apply`'s time. Libraries only some commands or
some steps use are imported where they run."""

from __future__ import annotations

import subprocess
import sys

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
