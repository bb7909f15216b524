"""Where reading stopped in each file, kept in a JSON state file so a restart resumes there.

A file is known by its device and inode *and* a fingerprint of its first bytes: an inode is reused
after a file is deleted, and a file can be replaced in place, so neither alone says "the same file".
The path is kept too: a device number can change across reboots, and then path + fingerprint still find
the file. A mark with ``gone`` set is a file that had left its watched path (rotated away) before it was
read to its end; its path is where it was last seen, so it is found again by device + inode (never by
path: another file lives there now).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass

import orjson

log = logging.getLogger(__name__)

FINGERPRINT_BYTES = 256
VERSION = 1


def fingerprint(prefix: bytes) -> str:
    return hashlib.blake2b(prefix, digest_size=16).hexdigest()


@dataclass(frozen=True, slots=True)
class FileMark:
    path: str
    device: int
    inode: int
    fingerprint: str  # of the first fingerprint_size bytes
    fingerprint_size: int
    offset: int  # every byte before this has been handed to the pipeline (or was unusable)
    gone: bool = False  # rotated away from ``path`` and not yet read to its end


def find_mark(
    marks: Sequence[FileMark], path: str, device: int, inode: int, read_prefix: Callable[[int], bytes]
) -> FileMark | None:
    """The mark of this file, if its first bytes still are what they were when the mark was taken."""
    same_inode = [m for m in marks if m.device == device and m.inode == inode]
    same_path = [m for m in marks if m.path == path and not m.gone and m not in same_inode]
    for mark in same_inode + same_path:
        prefix = read_prefix(mark.fingerprint_size)
        if len(prefix) == mark.fingerprint_size and fingerprint(prefix) == mark.fingerprint:
            return mark
    return None


class CheckpointFile:
    def __init__(self, path: str) -> None:
        self.path = path

    def load(self) -> list[FileMark]:
        """The saved marks; none when there is no file, and none (with a warning) when it is unreadable."""
        try:
            with open(self.path, "rb") as handle:
                data = orjson.loads(handle.read())
            if not isinstance(data, dict) or data.get("version") != VERSION:
                raise ValueError("not a meshscope filelog checkpoint (version 1)")
            return [
                FileMark(
                    path=str(item["path"]),
                    device=int(item["device"]),
                    inode=int(item["inode"]),
                    fingerprint=str(item["fingerprint"]),
                    fingerprint_size=int(item["fingerprint_size"]),
                    offset=int(item["offset"]),
                    gone=bool(item.get("gone", False)),
                )
                for item in data["files"]
            ]
        except FileNotFoundError:
            return []
        except (OSError, ValueError, KeyError, TypeError) as exc:
            # Starting over beats refusing to start; the warning says lines may be read again.
            log.warning("checkpoint %s is unusable (%s): files are read as if first seen", self.path, exc)
            return []

    def save(self, marks: Iterable[FileMark]) -> bool:
        """Write all marks atomically (temp file, fsync, rename). False, with a warning, when that fails."""
        payload = orjson.dumps({"version": VERSION, "files": [asdict(mark) for mark in marks]})
        directory = os.path.dirname(os.path.abspath(self.path))
        try:
            os.makedirs(directory, exist_ok=True)
            fd, temp = tempfile.mkstemp(prefix=".checkpoint-", dir=directory)
            try:
                with os.fdopen(fd, "wb") as handle:
                    handle.write(payload)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(temp, self.path)
            except BaseException:
                with contextlib.suppress(OSError):
                    os.unlink(temp)
                raise
        except OSError as exc:
            log.warning("cannot write checkpoint %s: %s", self.path, exc)
            return False
        return True
