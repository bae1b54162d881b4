"""Errors caused by user input.

`InputError` carries one line naming the input and the problem; the CLI prints
it as is (no traceback) and exits non-zero.
"""


class InputError(Exception):
    """Bad user input: a missing or unreadable file, an invalid option value."""

    def __init__(self, source: str, problem: str):
        self.source = str(source)
        self.problem = problem
        super().__init__(f"{self.source}: {problem}")

    def __reduce__(self):  # pickled as its two arguments: it crosses from worker processes (motionrecon.workers)
        return type(self), (self.source, self.problem)
