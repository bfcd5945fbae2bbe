"""Real Prisma (the npm packages pinned in tests/prisma/) as a judge of etl's `--prisma` output.

Prisma 6.19.3 runs offline here: its WebAssembly schema engine talks to PostgreSQL through
@prisma/adapter-pg (tests/prisma/prisma.config.ts). The packages live outside the clone, in
`$ETL_PRISMA_CACHE` or `~/.cache/etl-prisma/<hash of package-lock.json>`, so a second run of
`tests/run.sh` installs nothing: `python tests/fix_prisma.py install` puts them there (npm ci).

The `prisma` fixture skips its tests when the packages are not installed, unless
`$ETL_REQUIRE_PRISMA` is set (CI sets it): then they fail, since CI must not pass without Prisma.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

HARNESS = Path(__file__).resolve().parent / "prisma"
_FILES = ("package.json", "package-lock.json")
_DRY = re.compile(r"^-- etl-dry: (.*)$", re.M)


def prisma_home() -> Path:
    """Where the pinned packages are (or go): keyed by the lock file, so a new pin installs anew."""
    if os.environ.get("ETL_PRISMA_CACHE"):
        return Path(os.environ["ETL_PRISMA_CACHE"])
    digest = hashlib.sha256((HARNESS / "package-lock.json").read_bytes()).hexdigest()[:16]
    return Path.home() / ".cache" / "etl-prisma" / digest


def _cli(home: Path) -> Path:
    return home / "node_modules" / "prisma" / "build" / "index.js"


def install() -> Path:
    """`npm ci` into prisma_home() unless it is there already; a half-done install never counts."""
    home = prisma_home()
    if _cli(home).exists():
        return home
    home.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=home.name + ".", dir=home.parent))
    try:
        for name in _FILES:
            shutil.copy(HARNESS / name, staging / name)
        # --ignore-scripts: the packages' install scripts would download native engines.
        subprocess.run(
            ["npm", "ci", "--ignore-scripts", "--no-audit", "--no-fund", "--loglevel=error"],
            cwd=staging,
            check=True,
        )
        staging.rename(home)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return home


class PrismaError(AssertionError):
    """The Prisma CLI failed; its output says why."""


class Prisma:
    """The Prisma CLI from prisma_home(), with the harness's config, against one database."""

    def __init__(self, home: Path):
        self.home = home
        # The config imports pg and the adapter: it must sit beside node_modules.
        shutil.copy(HARNESS / "prisma.config.ts", home / "prisma.config.ts")
        placeholder = str(home / "package.json")  # any existing file stops engine downloads
        self.env = {
            **os.environ,
            "PRISMA_QUERY_ENGINE_LIBRARY": placeholder,
            "PRISMA_SCHEMA_ENGINE_BINARY": placeholder,
            "PRISMA_HIDE_UPDATE_MESSAGE": "1",
            "CHECKPOINT_DISABLE": "1",
        }

    def run(self, url: str, *args: str | Path, dry: bool = False) -> str:
        """Prisma's stdout; a failing command is a PrismaError with its output."""
        env = {**self.env, "ETL_PRISMA_URL": url, "DATABASE_URL": url, "ETL_PRISMA_DRY": "1" if dry else "0"}
        command = ["node", str(_cli(self.home)), *map(str, args), "--config", "prisma.config.ts"]
        done = subprocess.run(command, cwd=self.home, env=env, capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise PrismaError(f"prisma {' '.join(map(str, args))} failed:\n{done.stdout}\n{done.stderr}")
        return done.stdout

    def ddl(self, url: str, schema: Path) -> str:
        """The SQL Prisma creates the schema's database with (its provider's dialect)."""
        return self.run(url, "migrate", "diff", "--from-empty", "--to-schema-datamodel", schema, "--script")

    def push_statements(self, url: str, schema: Path) -> list[str]:
        """What `prisma db push` would change in the database at `url`, changing nothing."""
        out = self.run(url, "db", "push", "--accept-data-loss", "--skip-generate", "--schema", schema, dry=True)
        return _DRY.findall(out)


if __name__ == "__main__":
    if sys.argv[1:] != ["install"]:
        sys.exit("usage: python tests/fix_prisma.py install")
    print(f"Prisma for the tests: {install()}")
