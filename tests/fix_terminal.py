"""A pseudo-terminal to run etl on, and a small terminal emulator to see the screen a person sees.

The emulator knows what a progress display writes: printable characters (wrapping at the width),
carriage return, line feed, backspace, and the CSI sequences for cursor movement, erasing a line or
the screen below, and colours (ignored). It keeps every line that ever scrolled by, so "the screen"
here is the whole transcript as it finally stands."""

from __future__ import annotations

import fcntl
import os
import re
import select
import struct
import subprocess
import termios
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

_CSI = re.compile(r"\x1b\[([0-9;?]*)([@-~])")
_OSC = re.compile(r"\x1b\][^\x07\x1b]*(\x07|\x1b\\)")


def run_on_terminal(
    argv: Sequence[str],
    *,
    columns: int,
    rows: int = 40,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 180,
    answer: tuple[bytes, str] | None = None,
) -> tuple[int, str]:
    """Run argv with stdin, stdout and stderr on a pseudo-terminal of the given size, typing
    nothing but `answer`: (question, the line typed once the output holds the question); return its
    exit code and everything it wrote (as the terminal received it)."""
    primary, secondary = os.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", rows, columns, 0, 0))
    environment = {k: v for k, v in (env or os.environ).items() if k not in ("COLUMNS", "LINES")}
    environment["TERM"] = "xterm-256color"
    process = subprocess.Popen(
        list(argv),
        stdin=secondary,
        stdout=secondary,
        stderr=secondary,
        env=environment,
        cwd=cwd,
        close_fds=True,
    )
    os.close(secondary)
    output = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([primary], [], [], 0.5)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                chunk = os.read(primary, 65536)
            except OSError:  # the child closed the terminal
                break
            if not chunk:
                break
            output += chunk
            if answer is not None and answer[0] in output:
                os.write(primary, answer[1].encode() + b"\n")
                answer = None
        else:
            process.kill()
            raise TimeoutError(f"{argv[0]} did not finish in {timeout} s: {bytes(output[-2000:])!r}")
    finally:
        os.close(primary)
    return process.wait(timeout=60), output.decode("utf-8", errors="replace")


def final_screen(output: str, columns: int) -> list[str]:
    """The lines as they stand once `output` has been written to a terminal `columns` wide."""
    lines: list[list[str]] = [[]]
    row = col = 0
    pending_wrap = False
    text = _OSC.sub("", output)
    i = 0
    while i < len(text):
        ch = text[i]
        match = _CSI.match(text, i) if ch == "\x1b" else None
        if match:
            params, final = match.groups()
            numbers = [int(p) for p in params.lstrip("?").split(";") if p.isdigit()]
            n = numbers[0] if numbers else 0
            line = lines[row]
            if final == "K":  # erase in line: 0 to the end, 1 to the cursor, 2 all
                if n == 0:
                    del line[col:]
                elif n == 1:
                    line[: col + 1] = [" "] * min(col + 1, len(line))
                else:
                    line.clear()
            elif final == "J" and n == 0:  # erase below
                del line[col:]
                del lines[row + 1 :]
            elif final == "A":
                row = max(0, row - max(n, 1))
            elif final == "B":
                row += max(n, 1)
            elif final == "C":
                col = min(columns - 1, col + max(n, 1))
            elif final == "D":
                col = max(0, col - max(n, 1))
            elif final == "G":
                col = max(n, 1) - 1
            pending_wrap = False
            i = match.end()
        elif ch == "\x1b":
            i += 2  # a two-character escape (cursor save/restore, charset): no effect on the text
            continue
        else:
            if ch == "\r":
                col, pending_wrap = 0, False
            elif ch == "\n":
                row, pending_wrap = row + 1, False
            elif ch == "\b":
                col, pending_wrap = max(0, col - 1), False
            elif ch >= " ":
                if pending_wrap:
                    row, col, pending_wrap = row + 1, 0, False
                while len(lines) <= row:
                    lines.append([])
                line = lines[row]
                line.extend(" " * (col + 1 - len(line)))
                line[col] = ch
                if col == columns - 1:
                    pending_wrap = True
                else:
                    col += 1
            i += 1
        while len(lines) <= row:
            lines.append([])
    screen = ["".join(line).rstrip() for line in lines]
    while screen and not screen[-1]:
        screen.pop()
    return screen
