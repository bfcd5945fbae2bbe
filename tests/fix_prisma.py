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
import json
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
# `db push`'s last word. On schemas with enums the CLI then idles on a timer for a minute before
# it exits: once this line is out, the command's work is done and the process is ended.
_PUSHED = re.compile(r"(already|now) in sync with (your|the) Prisma schema")


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
        for name in ("prisma.config.ts", "client_check.cjs"):
            shutil.copy(HARNESS / name, home / name)
        placeholder = str(home / "package.json")  # any existing file stops engine downloads
        self.env = {
            **os.environ,
            "PRISMA_QUERY_ENGINE_LIBRARY": placeholder,
            "PRISMA_SCHEMA_ENGINE_BINARY": placeholder,
            "PRISMA_HIDE_UPDATE_MESSAGE": "1",
            "CHECKPOINT_DISABLE": "1",
        }

    def run(self, url: str, *args: str | Path, dry: bool = False, last: re.Pattern[str] | None = None) -> str:
        """Prisma's stdout; a failing command is a PrismaError with its output. A line matching
        `last` ends the command (see _PUSHED)."""
        env = {**self.env, "ETL_PRISMA_URL": url, "DATABASE_URL": url, "ETL_PRISMA_DRY": "1" if dry else "0"}
        command = ["node", str(_cli(self.home)), *map(str, args), "--config", "prisma.config.ts"]
        lines: list[str] = []
        with (
            tempfile.TemporaryFile("w+") as err,
            subprocess.Popen(
                command, cwd=self.home, env=env, stdout=subprocess.PIPE, stderr=err, text=True
            ) as proc,
        ):
            assert proc.stdout is not None
            for line in proc.stdout:
                lines.append(line)
                if last is not None and last.search(line):
                    proc.terminate()
                    break
            code = proc.wait(timeout=300)
            if code != 0 and not (last is not None and lines and last.search(lines[-1])):
                err.seek(0)
                raise PrismaError(
                    f"prisma {' '.join(map(str, args))} failed:\n{''.join(lines)}\n{err.read()}"
                )
        return "".join(lines)

    def ddl(self, url: str, schema: Path) -> str:
        """The SQL Prisma creates the schema's database with (its provider's dialect)."""
        return self.run(url, "migrate", "diff", "--from-empty", "--to-schema-datamodel", schema, "--script")

    def push_statements(self, url: str, schema: Path) -> list[str]:
        """What `prisma db push` would change in the database at `url`, changing nothing."""
        out = self.run(
            url,
            "db",
            "push",
            "--accept-data-loss",
            "--skip-generate",
            "--schema",
            schema,
            dry=True,
            last=_PUSHED,
        )
        return _DRY.findall(out)

    def client_check(self, url: str, schema: Path, models: dict) -> dict:
        """Prisma Client (query compiler + PrismaPg) generated for `schema` reads every model's rows
        and creates, updates and deletes a row in each (tests/prisma/client_check.cjs; `models` is
        the JSON it describes). Returns its report: {"rows": {model: count}, "changed": [model]}."""
        work = Path(tempfile.mkdtemp(prefix="client-", dir=self.home))  # generate wants node_modules above
        try:
            generator = f'generator client {{\n  provider = "prisma-client-js"\n  engineType = "client"\n  output = "{work / "client"}"\n}}'
            text = re.sub(
                r"generator\s+\w+\s*\{[^}]*\}", lambda _: generator, schema.read_text(encoding="utf-8")
            )
            (work / "schema.prisma").write_text(text, encoding="utf-8")
            (work / "models.json").write_text(json.dumps(models), encoding="utf-8")
            self.run(url, "generate", "--schema", work / "schema.prisma")
            done = subprocess.run(
                ["node", "client_check.cjs", str(work / "client"), str(work / "models.json")],
                cwd=self.home,
                env={**self.env, "ETL_PRISMA_URL": url},
                capture_output=True,
                text=True,
                timeout=300,
            )
            if done.returncode != 0:
                raise PrismaError(f"Prisma Client failed:\n{done.stderr[-4000:]}")
            return json.loads(done.stdout.splitlines()[-1])
        finally:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    if sys.argv[1:] != ["install"]:
        sys.exit("usage: python tests/fix_prisma.py install")
    print(f"Prisma for the tests: {install()}")
