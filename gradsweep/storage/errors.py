"""The storage layer's user-facing error: one clear line, turned into exit code 2 by the CLI."""

from __future__ import annotations


class StorageError(Exception):
    """A bad URL, an unreachable server, a schema newer than the code, an unknown study."""
