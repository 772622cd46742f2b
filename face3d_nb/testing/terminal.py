"""Running a command with its stderr on a pseudo-terminal, as a user at a terminal would see it."""

from __future__ import annotations

import fcntl
import os
import pty
import struct
import subprocess
import termios

__all__ = ["run_on_terminal"]


def run_on_terminal(command: list[str], env: dict | None = None, timeout: float = 300,
                    columns: int = 120) -> tuple[int, str, str]:
    """Run ``command`` with stdout piped and stderr on a new pseudo-terminal ``columns`` wide.

    Returns (exit status, stdout, what the terminal received).
    """
    leader, follower = pty.openpty()
    # A new pseudo-terminal is 0 columns wide, where a bar sized to the terminal shows nothing.
    fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 40, columns, 0, 0))
    try:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=follower, env=env, text=True)
        os.close(follower)
        received = bytearray()
        while True:
            try:
                chunk = os.read(leader, 1 << 16)
            except OSError:
                # Linux reports the terminal's far end closing (the command has ended) as EIO.
                break
            if not chunk:
                break
            received += chunk
        stdout = proc.stdout.read()
        proc.wait(timeout)
    finally:
        os.close(leader)
    return proc.returncode, stdout, received.decode(errors="replace")
