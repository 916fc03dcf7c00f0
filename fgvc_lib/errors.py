"""One exception type for problems a user can fix.

The CLI turns an :class:`FGVCError` into one line on stderr and exit code 2,
so every message must say what is wrong *and* what to do about it.
"""
from __future__ import annotations


class FGVCError(Exception):
    """A user-fixable problem: bad path, malformed dataset, unknown name, ...

    Parameters
    ----------
    problem:
        What is wrong, naming the offending path or value.
    fix:
        What the user should do. Appended as ``-> fix: ...``.
    """

    def __init__(self, problem: str, fix: str | None = None) -> None:
        self.problem = one_line(problem)
        self.fix = None if fix is None else one_line(fix)
        message = self.problem if self.fix is None else f"{self.problem} -> fix: {self.fix}"
        super().__init__(message)


def one_line(text: object) -> str:
    """``text`` on one line: line breaks (and the indentation after them) become one space.

    Messages quote other libraries' errors, which may span lines (torch's refusal of a
    pickled object, a DataLoader worker's traceback); an FGVCError is always one line.
    """
    text = str(text)
    if "\n" not in text and "\r" not in text:
        return text
    return " ".join(part.strip() for part in text.splitlines() if part.strip())


def unknown_name_error(kind: str, name: str, known: list[str] | tuple[str, ...]) -> FGVCError:
    """The error for an unknown method / dataset / backbone / profile name."""
    return FGVCError(
        f"unknown {kind} {name!r}",
        f"use one of: {', '.join(sorted(known))}",
    )
