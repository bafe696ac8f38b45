"""Columns by name: a table's header indexed once (``Table.index``; a name used twice is refused), the
``--columns``/``--target`` specs that pick columns, and a close match for a name that is not
there.

Every lookup is one dict lookup and every set of picked columns a dict, so picking or matching
n columns costs O(n), not O(n²): a header of 10⁶ names is matched in about a second.
"""

from __future__ import annotations

import difflib

from .errors import CLIError

# Names listed in full in an error; beyond this, the first few and the count.
SHOWN = 8


def close_to(name: str, names) -> str:
    """" (did you mean 'x'?)" naming the closest of ``names`` to ``name`` (case aside: "Age"
    is close to "age"), or "" if none is close."""
    lowered: dict[str, str] = {}
    for other in names:
        lowered.setdefault(other.lower(), other)
    close = difflib.get_close_matches(name.lower(), lowered, n=1)
    return f" (did you mean {lowered[close[0]]!r}?)" if close else ""


def listed(names: list[str]) -> str:
    """``names`` comma-separated, the first ``SHOWN`` of a long list and the count."""
    if len(names) <= SHOWN:
        return ", ".join(names)
    return ", ".join(names[:SHOWN]) + f", … ({len(names):,} in all)"


def by_name(table, names: list[str], whose: str, hint: str) -> list[int]:
    """The columns of ``table`` named ``names``, in their order. A name the header lacks is an
    error naming it, with the closest column not among ``names`` and how many more are
    missing, then ``hint`` (how to say otherwise). ``whose``: e.g. "inputs of m.npz"."""
    index = table.index
    missing = [name for name in names if name not in index]
    if missing:
        wanted = set(names)
        unseen = [name for name in table.names if name not in wanted]
        more = f"; {len(missing):,} of them are missing" if len(missing) > 1 else ""
        raise CLIError(f"{table.path}: no column {missing[0]!r}{close_to(missing[0], unseen)}, "
                       f"one of the {len(names):,} {whose}{more}; {hint}")
    return [index[name] for name in names]


def pick(table, spec: str, option: str, rest: list[int] | None = None) -> list[int]:
    """Column indices of ``table`` from ``spec``, in its order: comma-separated items, each a
    header name, an index (negative from the end) or an inclusive range ``first:last`` of
    either (``f0:f63``, ``0:3``); an item written ``!item`` leaves those columns out. A spec
    of exclusions only starts from ``rest`` (default: every column)."""
    items = [s.strip() for s in spec.split(",")]
    if not all(items):
        raise CLIError(f"{option} {spec}: an empty column name; expected names, indices or ranges like f0:f63")
    index = table.index
    everything = range(table.width) if rest is None else rest
    picked = dict.fromkeys(everything if all(item.startswith("!") for item in items) else ())  # an ordered set
    for item in items:
        excluded = item.startswith("!")
        found = _resolve(table, index, item[1:] if excluded else item, spec, option)
        for j in found:
            if excluded:
                picked.pop(j, None)
            elif j in picked:
                raise CLIError(f"{option} {spec}: column {table.name(j)} named twice")
            else:
                picked[j] = None
    if not picked:
        raise CLIError(f"{option} {spec}: leaves no column of {table.path}")
    return list(picked)


def _resolve(table, index: dict[str, int], item: str, spec: str, option: str) -> range:
    """The columns one item of a spec names: a name, an index or a range first:last."""
    if item in index:
        return range(index[item], index[item] + 1)
    if ":" in item:
        first, last = (_index(table, index, end, spec, option) for end in item.split(":", 1))
        if first > last:
            raise CLIError(f"{option} {spec}: the range {item!r} runs backwards (column {first} to {last})")
        return range(first, last + 1)
    j = _index(table, index, item, spec, option)
    return range(j, j + 1)


def _index(table, index: dict[str, int], item: str, spec: str, option: str) -> int:
    if item in index:
        return index[item]
    try:
        j = int(item)
    except ValueError:
        close = close_to(item, index)
        known = close[1:] if close else f"(its columns are {listed(table.names)})" if table.names \
            else "(it has no header, use indices)"
        raise CLIError(f"{option} {spec}: no column {item!r} in {table.path} {known}") from None
    if not -table.width <= j < table.width:
        raise CLIError(f"{option} {spec}: column {j} is out of range, {table.path} has {table.width} columns")
    return j % table.width
