"""A user's mistake, and how any error becomes the one line the command prints."""

from __future__ import annotations


class CLIError(Exception):
    """A user's mistake, reported as one line."""


def one_line(err) -> str:
    """``err``'s message on one line; for an OSError, "file: reason"."""
    text = str(err) or type(err).__name__
    if isinstance(err, OSError) and err.filename and err.strerror:
        text = f"{err.filename}: {err.strerror}"
    return " ".join(text.split())


def count(n: int, noun: str) -> str:
    """"1 input", "3 inputs"."""
    return f"{n} {noun}{'' if n == 1 else 's'}"
