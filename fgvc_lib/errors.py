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
        self.problem = problem
        self.fix = fix
        message = problem if fix is None else f"{problem} -> fix: {fix}"
        super().__init__(message)


def unknown_name_error(kind: str, name: str, known: list[str] | tuple[str, ...]) -> FGVCError:
    """The error for an unknown method / dataset / backbone / profile name."""
    return FGVCError(
        f"unknown {kind} {name!r}",
        f"use one of: {', '.join(sorted(known))}",
    )
