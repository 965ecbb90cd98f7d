"""One exception type for every problem the user can fix (bad input, bad file, bad options)."""


class SemiconvError(ValueError):
    """A user-facing error: the message says what is wrong and what to do."""
