"""A file a user hands in is read within its limit, whatever its size claims: ``/dev/zero``, a
named pipe or ``<(command)`` is refused once it gives more than the limit."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from automatos.errors import InvalidRequestError
from automatos.files import read_user_file

# The read is made in a child process with its memory capped, so that reading without a
# bound (as before) fails the test instead of the machine.
CAPPED = """
import resource, sys
resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))
from automatos.errors import InvalidRequestError
from automatos.files import read_user_file
try:
    read_user_file(sys.argv[1], 1000, setting="some.setting")
except InvalidRequestError as exc:
    print(exc)
"""


def test_dev_zero_is_refused_past_the_limit() -> None:
    done = subprocess.run(
        [sys.executable, "-c", CAPPED, "/dev/zero"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == (
        "/dev/zero is more than 1000 bytes; the limit is 1000 (setting some.setting)"
    )


def _feed(path: Path, size: int) -> threading.Thread:
    def write() -> None:
        try:
            with path.open("wb") as pipe:
                for _ in range(size // 100):
                    pipe.write(b"x" * 99 + b"\n")
        except BrokenPipeError:  # the reader stopped reading: as it should
            pass

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    return writer


def test_a_named_pipe_is_read_within_the_limit(tmp_path: Path) -> None:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    writer = _feed(path, 1_000)
    assert read_user_file(path, 1_000) == ("x" * 99 + "\n") * 10
    writer.join(timeout=30)


def test_a_named_pipe_that_gives_too_much_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "pipe"
    os.mkfifo(path)
    writer = _feed(path, 1_000_000)
    with pytest.raises(InvalidRequestError, match=r"is more than 1000 bytes; the limit is 1000$"):
        read_user_file(path, 1_000)
    writer.join(timeout=30)
    assert not writer.is_alive()


def test_a_regular_file_too_large_is_refused_by_its_size(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_bytes(b"x" * 1001)
    with pytest.raises(InvalidRequestError, match=r"big.txt is 1001 bytes; the limit is 1000$"):
        read_user_file(path, 1_000)


def test_newlines_encoding_and_what_is_not_a_file(tmp_path: Path) -> None:
    path = tmp_path / "request.txt"
    path.write_bytes("été\r\nnext\rlast\n".encode())
    assert read_user_file(path, 100) == "été\nnext\nlast\n"
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(InvalidRequestError, match="is not UTF-8 text"):
        read_user_file(path, 100)
    with pytest.raises(InvalidRequestError, match=r"cannot read .*missing\.txt: No such file"):
        read_user_file(tmp_path / "missing.txt", 100)
    with pytest.raises(InvalidRequestError, match=r"cannot read .*: Is a directory"):
        read_user_file(tmp_path, 100)
