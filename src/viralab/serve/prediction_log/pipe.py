"""The pipes between a serving process and its prediction-log writer process: how a message
is framed, and how the writer is started.

A frame is the pickled message behind its length (`HEADER`). Messages to the writer:
``("config", settings)`` first (the database URL among them: never on a command line, which
any user of the machine can read), then ``("rows", rows)``, ``("columns", common, columns,
documents)``, ``("upstream", dropped_total)``, ``("flush", seq, timeout)`` and
``("close", timeout)``; the writer answers a flush with ``("ack", seq, counts)``.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import pickle
import struct
import subprocess
import sys
from typing import IO, Any

#: Frame header: the pickled message's length.
HEADER = struct.Struct(">Q")
WRITER_MODULE = "viralab.serve.prediction_log_writer"
PIPE_BYTES = 1 << 20


def frame(message: Any) -> bytes:
    """`message` as the bytes of one frame."""
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    return HEADER.pack(len(body)) + body


def write_frame(stream: IO[bytes], message: Any) -> None:
    body = pickle.dumps(message, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(HEADER.pack(len(body)))
    stream.write(body)


def read_frame(stream: IO[bytes]) -> Any:
    """The next message, or None at the end of the stream."""
    header = _read_exactly(stream, HEADER.size)
    if header is None:
        return None
    body = _read_exactly(stream, HEADER.unpack(header)[0])
    return None if body is None else pickle.loads(body)


def _read_exactly(stream: IO[bytes], n: int) -> bytes | None:
    data = stream.read(n)
    if data is None or len(data) < n:
        return None
    return data


def start_writer(wake_read: int) -> tuple[subprocess.Popen[bytes], IO[bytes]]:
    """The writer process (`WRITER_MODULE`), reading frames on its stdin and woken through
    `wake_read`, and the pipe it answers on. Closes `wake_read` here (the child has it).

    Raises:
        OSError: no process can be started.
    """
    read_fd, write_fd = os.pipe()  # acks: writer -> here
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", WRITER_MODULE, str(write_fd), str(wake_read)],
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,  # the acks have their own pipe
            pass_fds=(write_fd, wake_read),
            close_fds=True,
        )
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
        os.close(wake_read)
    return proc, os.fdopen(read_fd, "rb")


def open_data_pipe(proc: subprocess.Popen[bytes]) -> int:
    """The writer's stdin, made non-blocking (a full pipe must never stall scoring) and, on
    Linux, large: room for ~10,000 rows while the writer is busy with a batch."""
    assert proc.stdin is not None
    fd = proc.stdin.fileno()
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    fcntl.fcntl(fd, fcntl.F_SETFL, flags | os.O_NONBLOCK)
    with contextlib.suppress(OSError, AttributeError):  # not Linux: the default 64 KB
        fcntl.fcntl(fd, fcntl.F_SETPIPE_SZ, PIPE_BYTES)
    return fd
