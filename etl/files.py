"""Writing etl's own files (a spec from `etl init`, the report of rejected rows) so that a reader
never sees half a file and a symbolic link planted at the path is never written through: the text
goes to a new temporary file in the same directory (created exclusively, so never through a link),
is flushed to disk, and then takes the path's place with one rename."""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path

from etl.errors import OutputFileError

PRIVATE = 0o600  # rejected rows hold an app's data, often personal


def default_mode() -> int:
    """What open() would create: 0666 less the process's umask."""
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


def check_writable_path(path: Path) -> None:
    """Refuse a path that is a symbolic link or not a regular file: writing through a link would
    change the file it points to, wherever that is."""
    try:
        found = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as exc:
        raise OutputFileError(f"cannot write '{path}': {exc.strerror or exc}") from exc
    if stat.S_ISLNK(found.st_mode):
        raise OutputFileError(
            f"cannot write '{path}': it is a symbolic link, which etl never writes through (remove it)"
        )
    if stat.S_ISDIR(found.st_mode):
        raise OutputFileError(f"cannot write '{path}': it is a directory (remove it)")
    if not stat.S_ISREG(found.st_mode):
        raise OutputFileError(f"cannot write '{path}': it is not a regular file (remove it)")


def stage_file(path: Path, text: str, mode: int) -> Path:
    """`text` written and flushed to a new file beside `path` with permissions `mode`, ready for
    `replace_file`; the checks `replace_file` makes are made here first, so that what can fail
    fails before anything depends on the file being written."""
    check_writable_path(path)
    try:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    except OSError as exc:
        raise OutputFileError(f"cannot write '{path}': {exc.strerror or exc}") from exc
    staged = Path(name)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            os.fchmod(file.fileno(), mode)
            file.write(text)
            file.flush()
            os.fsync(file.fileno())
    except OSError as exc:
        staged.unlink(missing_ok=True)
        raise OutputFileError(f"cannot write '{path}': {exc.strerror or exc}") from exc
    return staged


def replace_file(staged: Path, path: Path) -> None:
    """The staged file takes `path`'s place in one rename (a link at `path` is refused, never
    followed), and the directory entry is flushed to disk."""
    try:
        check_writable_path(path)
        os.replace(staged, path)
    except OSError as exc:
        raise OutputFileError(f"cannot write '{path}': {exc.strerror or exc}") from exc
    finally:
        staged.unlink(missing_ok=True)
    try:
        directory = os.open(path.parent, os.O_RDONLY)
    except OSError:
        return  # the file is in place; a directory that cannot be opened cannot be flushed either
    try:
        os.fsync(directory)
    except OSError:
        pass
    finally:
        os.close(directory)


def write_file(path: Path, text: str, mode: int) -> None:
    """`text` at `path`, written atomically, never through a symbolic link."""
    replace_file(stage_file(path, text, mode), path)
