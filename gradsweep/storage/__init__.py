"""The results database: schema, migrations, the idempotent writer and read queries.

Knows nothing of torch or Ray. Notebook users read through ``gradsweep.storage.queries``
(every function returns a pandas DataFrame) after ``open_engine(url)``.
"""

from gradsweep.storage.engine import open_engine, resolve_url, session_scope, upgrade_database
from gradsweep.storage.errors import StorageError

__all__ = ["StorageError", "open_engine", "resolve_url", "session_scope", "upgrade_database"]
