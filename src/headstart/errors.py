"""The exception types of headstart: user errors and interrupted runs, printed without a traceback."""

__all__ = ["HeadstartError", "RunInterrupted"]


class HeadstartError(Exception):
    """A problem with the user's input or environment; the message names the problem and the fix."""


class RunInterrupted(KeyboardInterrupt):
    """Ctrl-C during a run. Still a ``KeyboardInterrupt`` (notebooks and callers stop as usual); its
    message says what was kept and the exact command that continues the run."""
