"""Errors a user can act on.

Every stage raises :class:`SelfsupError` (or a subclass) for bad input, with a message that says
what was wrong and how to fix it. The CLI prints these without a traceback and exits with code 2;
anything else is a bug and keeps its traceback.
"""


class SelfsupError(Exception):
    """A problem with the user's input, paths, parameters or environment."""


class DataError(SelfsupError):
    """Input data that cannot be read or is unsafe (corrupt image, path traversal, missing file)."""


class ConfigError(SelfsupError):
    """Invalid parameters."""


class IntegrityError(SelfsupError):
    """An artifact whose files do not match the checksums in its manifest."""


class StoreError(SelfsupError):
    """An artifact store that cannot be reached, refuses the credentials, or lacks an object."""


class OutputError(SelfsupError):
    """An output path that must not be replaced (a user's folder, the current directory)."""
