"""The one exception type the toolkit raises for problems a user can fix.

The CLI prints ``error: <message>`` for these and exits with their ``exit_status``; anything
else is a bug and keeps its traceback.
"""

__all__ = ["SwintormerError"]


class SwintormerError(Exception):
    """A problem with the user's input, files or environment, with a message that says what to do.

    ``exit_status`` is what the command line exits with: 2 for a usage or input error; a
    subclass for a failing service (a server that cannot be reached) says 1.
    """

    exit_status = 2
