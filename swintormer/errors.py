"""The one exception type the toolkit raises for problems a user can fix.

The CLI prints ``error: <message>`` for these and exits non-zero; anything else is a bug and
keeps its traceback.
"""

__all__ = ["SwintormerError"]


class SwintormerError(Exception):
    """A problem with the user's input, files or environment, with a message that says what to do."""
