"""argparse types shared by the subcommands: each parses one option's text or says what it expected."""

from __future__ import annotations

import argparse
import math


def _number(kind, accept, what: str):
    """An argparse type: ``kind(text)`` where ``accept`` approves it, else "expected {what}"."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is not None and not math.isfinite(value):  # inf seconds would measure forever
            raise argparse.ArgumentTypeError(f"expected a finite number ({what}), got {text!r}")
        if value is None or not accept(value):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return value
    parse.__name__ = kind.__name__  # argparse names the type in its own messages
    return parse


def positive(kind, zero=False):
    """A ``kind`` number > 0 (≥ 0 with ``zero``)."""
    return _number(kind, (lambda v: v >= 0) if zero else (lambda v: v > 0),
                   f"a {'non-negative' if zero else 'positive'} {kind.__name__}")


def at_least(low, kind):
    """A ``kind`` number ≥ ``low``."""
    return _number(kind, lambda v: v >= low, f"{'an integer' if kind is int else 'a number'} >= {low}")


def fraction(text: str) -> float:
    """A number strictly between 0 and 1."""
    return _number(float, lambda v: 0 < v < 1, "a fraction in (0, 1)")(text)


def batch_size(text: str) -> int:
    """A positive int, or "full" (stored as 0: the whole batch)."""
    return 0 if text == "full" else positive(int)(text)


def class_weight(text: str) -> str:
    """--class-weight: "balanced" or CLASS=WEIGHT,… (a class by index or name), kept as text
    (a checkpoint stores it so; :func:`class_weights` reads it)."""
    class_weights(text)
    return text


def class_weights(text: str | None):
    """None, "balanced", or {class index (int) or name: weight} from --class-weight's text."""
    if text is None or text == "balanced":
        return text
    try:
        pairs = [item.split("=") for item in text.split(",")]
        return {(int(k) if k.strip().isdigit() else k.strip()): float(v) for k, v in pairs}
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected 'balanced' or CLASS=WEIGHT,... like 0=1,1=5, got {text!r}") from None


def sizes(text: str) -> list[int]:
    """Layer sizes "2,64,3": at least two positive integers."""
    try:
        values = [int(v) for v in text.split(",")]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers like 2,64,3, got {text!r}") from None
    if len(values) < 2 or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected at least 2 positive sizes like 2,64,3, got {text!r}")
    return values


def names(choices=None, kind=str, allow_none=False):
    """A comma-separated list of ``choices`` (or of positive ``kind`` numbers); "none" is the
    empty list where ``allow_none``."""
    def parse(text):
        if allow_none and text.strip() == "none":
            return []
        try:
            items = [kind(t.strip()) for t in text.split(",") if t.strip()]
        except ValueError:
            items = []
        if not items or any(choices is not None and i not in choices for i in items) or \
                any(kind is int and i < 1 for i in items):
            what = f"names from {', '.join(choices)}" if choices else "positive integers"
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {what}, got {text!r}")
        return items
    return parse
