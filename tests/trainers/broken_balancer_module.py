"""A module that raises while it is imported, as a user's broken plug-in might."""

raise RuntimeError("broken on import")
