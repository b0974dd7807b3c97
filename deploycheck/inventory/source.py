"""The inventory file's text, read within bounds: a regular file (a FIFO or a device such as /dev/zero
would block or never end), at most MAX_INVENTORY_BYTES, UTF-8 without NUL bytes. Every refusal is an
InventoryError naming the file, and the line and column of a bad byte."""

from __future__ import annotations

import os
import stat

from .specs import InventoryError, InventoryIssue

MAX_INVENTORY_BYTES = 1024 * 1024
"""The real services.yaml is about 10 KB; a limit keeps a wrong path from being read into memory."""

_KINDS = (
    (stat.S_ISDIR, "a directory"),
    (stat.S_ISFIFO, "a FIFO (named pipe)"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _refused(file: str, message: str, line: int = 0, column: int = 0) -> InventoryError:
    return InventoryError([InventoryIssue(file, line, column, "", message)])


def _not_regular(file: str, mode: int) -> InventoryError:
    kind = next((name for test, name in _KINDS if test(mode)), "not a regular file")
    return _refused(file, f"cannot read the inventory: it is {kind} (expected a regular YAML file)")


def _too_big(file: str, size: str) -> InventoryError:
    return _refused(
        file,
        f"cannot read the inventory: it is {size} bytes, over the 1 MiB "
        f"({MAX_INVENTORY_BYTES:,}-byte) limit (expected a YAML file of at most 1 MiB)",
    )


def read_inventory_bytes(file: str) -> bytes:
    """The file's bytes; InventoryError when it is missing, no regular file, or too big.
    The type and size are checked before opening, and the open never blocks (O_NONBLOCK), so a
    FIFO swapped in between is caught by fstat rather than waited on."""
    try:
        info = os.stat(file)
    except OSError as exc:
        raise _refused(file, f"cannot read the inventory: {exc.strerror or exc}") from None
    if not stat.S_ISREG(info.st_mode):
        raise _not_regular(file, info.st_mode)
    if info.st_size > MAX_INVENTORY_BYTES:
        raise _too_big(file, f"{info.st_size:,}")
    try:
        descriptor = os.open(file, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise _refused(file, f"cannot read the inventory: {exc.strerror or exc}") from None
    try:
        opened = os.fstat(descriptor)
        if not stat.S_ISREG(opened.st_mode):
            raise _not_regular(file, opened.st_mode)
        with os.fdopen(descriptor, "rb", closefd=False) as stream:
            data = stream.read(MAX_INVENTORY_BYTES + 1)
    except OSError as exc:
        raise _refused(file, f"cannot read the inventory: {exc.strerror or exc}") from None
    finally:
        os.close(descriptor)
    if len(data) > MAX_INVENTORY_BYTES:  # it grew after the stat
        raise _too_big(file, f"more than {MAX_INVENTORY_BYTES:,}")
    return data


def _line_column(data: bytes, offset: int) -> tuple[int, int]:
    """1-based line and column (in characters) of the byte at `offset`."""
    line_start = data.rfind(b"\n", 0, offset) + 1
    column = len(data[line_start:offset].decode("utf-8", errors="replace")) + 1
    return data.count(b"\n", 0, offset) + 1, column


def inventory_text(file: str, data: bytes) -> str:
    """`data` as text; InventoryError at the first NUL byte or the first byte that is not UTF-8."""
    nul = data.find(b"\x00")
    if data.startswith((b"\xff\xfe", b"\xfe\xff")):
        raise _refused(file, "the file is UTF-16 (expected UTF-8)", 1, 1)
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if 0 <= nul < exc.start:
            raise _nul(file, data, nul) from None
        line, column = _line_column(data, exc.start)
        raise _refused(
            file,
            f"byte 0x{data[exc.start]:02x} at byte offset {exc.start:,} is not UTF-8 (expected a UTF-8 text file)",
            line,
            column,
        ) from None
    if nul >= 0:
        raise _nul(file, data, nul)
    return text


def _nul(file: str, data: bytes, offset: int) -> InventoryError:
    line, column = _line_column(data, offset)
    return _refused(
        file, f"NUL byte at byte offset {offset:,} (expected a text file; is this a binary file?)", line, column
    )
