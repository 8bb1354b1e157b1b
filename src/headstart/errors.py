"""The one exception type for user errors: the CLI prints it as a paragraph, with no traceback."""

__all__ = ["HeadstartError"]


class HeadstartError(Exception):
    """A problem with the user's input or environment; the message names the problem and the fix."""
