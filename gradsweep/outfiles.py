"""The files a command's ``--out`` writes: checked first, then put in place atomically.

A command that writes a file must never destroy what was there. A tester's ``report --out``
replaced the very database it was reading, and, run as root, replaced ``/dev/null`` with
a regular file. So before anything is written, a target is refused (one line, exit 2)
when it is:

- the results database being read (the same file, by path or inode, or its -wal, -shm or
  -journal companion), or a folder where a file is expected, or a device, FIFO or socket:
  always, ``--force`` or not, since nothing a command writes belongs there;
- an existing file that is not of the command's own kind (``report`` replaces only an
  HTML report it wrote, ``export`` only the CSV or Parquet file it wrote): unless the
  user passes ``--force``. An empty file holds nothing to lose and is replaced.

Then the file is written under a temporary name in the target's folder and renamed over
the target (``os.replace``): a reader sees the old file or the new one, never half of
one, and a failed write (a full disk, an unwritable folder such as ``/proc``) leaves the
old file as it was and is one line, not a traceback. A symlink is followed: the file it
points to is replaced, the link kept.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
import stat
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from gradsweep.errors import GradsweepError

# the bytes of an existing file read to recognise it (a marker sits near the start)
HEAD_BYTES = 8192
SQLITE_COMPANIONS = ("-wal", "-shm", "-journal")


@dataclass(frozen=True)
class FileKind:
    """What a command writes: its name in messages, and how to recognise a file it wrote
    (``recognise`` reads the existing file; it is called only on a non-empty regular file)."""

    name: str
    recognise: Callable[[Path], bool]


def file_head(path: Path, size: int = HEAD_BYTES) -> bytes:
    """The first ``size`` bytes of a file, or nothing where it cannot be read."""
    try:
        with path.open("rb") as file:
            return file.read(size)
    except OSError:
        return b""


def database_files(engine: object) -> list[Path]:
    """The files of a SQLite engine's database (the file and its journal companions): what
    no output may replace. A PostgreSQL database has none here."""
    url = getattr(engine, "url", None)
    if url is None or url.get_backend_name() != "sqlite" or not url.database:
        return []
    main = Path(url.database)
    return [main, *(main.with_name(main.name + suffix) for suffix in SQLITE_COMPANIONS)]


def _cannot(option: str, path: Path, exc: OSError | ValueError) -> GradsweepError:
    reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
    return GradsweepError(f"{option}: cannot write {path}: {reason}")


def _is_protected(target: Path, found: os.stat_result | None, protected: Sequence[Path]) -> bool:
    """Whether ``target`` is one of the protected files: the same inode where both exist,
    else the same resolved path."""
    resolved = target.resolve()
    for path in protected:
        try:
            there = path.stat()
        except (OSError, ValueError):
            there = None
        if found is not None and there is not None:
            if (found.st_dev, found.st_ino) == (there.st_dev, there.st_ino):
                return True
        elif path.resolve() == resolved:
            return True
    return False


SPECIAL = (
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISSOCK, "a socket"),
)


def _special(mode: int) -> str | None:
    """What a non-regular file is, in words (None: a regular file)."""
    if stat.S_ISREG(mode):
        return None
    if stat.S_ISDIR(mode):
        return "a folder"
    return next((name for test, name in SPECIAL if test(mode)), "not a regular file")


def _stat(option: str, path: Path) -> os.stat_result | None:
    """The target's status (following links), None where nothing is there."""
    try:
        return path.stat()
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise _cannot(option, path, exc) from None


def check_target(
    option: str,
    out: str | Path,
    kind: FileKind,
    protected: Sequence[Path] = (),
    force: bool = False,
) -> Path:
    """The file to write for ``out`` (a symlink followed), or a one-line refusal (see the
    module's docstring); ``option`` names the option in messages."""
    text = str(out)
    if not text.strip() or text.endswith(("/", os.sep)):  # Path("x/") would drop the "/"
        raise GradsweepError(f"{option}: expected a file to write, got {text!r}")
    path = Path(text)
    found = _stat(option, path)
    if found is None and path.is_symlink():  # a dangling link: write where it points
        path = Path(os.path.realpath(path))
    target = path.resolve() if found is not None else path
    folder = target.parent
    if not folder.is_dir():
        raise GradsweepError(f"{option}: folder {folder} does not exist")
    if _is_protected(target, found, protected):
        raise GradsweepError(
            f"{option}: {path} is the results database being read; write elsewhere"
        )
    if found is None:
        return target
    special = _special(found.st_mode)
    if special is not None:
        raise GradsweepError(f"{option}: {path} is {special}; expected a file to write")
    if found.st_size and not force and not kind.recognise(target):
        raise GradsweepError(
            f"{option}: {path} exists and is not {kind.name}; pass --force to replace it"
        )
    return target


def check_folder(option: str, path: Path, protected: Sequence[Path] = ()) -> Path:
    """A folder to write files into, created if missing (with its parents); a refusal in
    one line where it is a file (the database among them) or cannot be made."""
    if not str(path).strip():
        raise GradsweepError(f"{option}: expected a folder, got {str(path)!r}")
    found = _stat(option, path)
    if found is not None and not stat.S_ISDIR(found.st_mode):
        if _is_protected(path, found, protected):
            raise GradsweepError(
                f"{option}: {path} is the results database being read; give a folder"
            )
        raise GradsweepError(f"{option}: {path} exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:  # a parent is a file
        raise GradsweepError(f"{option}: {path}: a part of the path is not a folder") from None
    except (OSError, ValueError) as exc:
        raise _cannot(option, path, exc) from None
    return path


def _temporary(folder: Path) -> Path:
    """A new, empty file in ``folder`` (created exclusively: nothing of anyone's is
    opened), with the permissions a new file gets there (0666 less the umask)."""
    tmp = folder / f".gradsweep-{secrets.token_hex(6)}.tmp"
    descriptor = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    os.close(descriptor)
    return tmp


def replace_atomically(option: str, target: Path, write: Callable[[Path], None]) -> Path:
    """``write(tmp)`` into a temporary file beside ``target``, flushed to disk, then renamed
    over it (an existing file's permissions are kept). Any failure removes the temporary
    file, leaves ``target`` as it was, and is one line naming ``option``."""
    tmp: Path | None = None
    try:
        tmp = _temporary(target.parent)
        write(tmp)
        with tmp.open("rb+") as file:
            os.fsync(file.fileno())
        with contextlib.suppress(FileNotFoundError):
            os.chmod(tmp, stat.S_IMODE(target.stat().st_mode))
        os.replace(tmp, target)
        tmp = None
    except OSError as exc:
        if exc.errno == errno.EISDIR:
            raise GradsweepError(f"{option}: {target} is a folder") from None
        raise _cannot(option, target, exc) from None
    finally:
        if tmp is not None:
            with contextlib.suppress(OSError):
                tmp.unlink()
    return target
