"""The bookkeeping behind RELIABILITY.md: which category each reliability test is in,
and how many faults, examples or divergences it tried.

A reliability test module names its category once::

    RELIABILITY = "fault"

and a test that tries many things in one run counts them::

    from reliability import tally
    tally()          # one more SIGKILL / hypothesis example / provoked divergence

``scripts/reliability_report.py`` runs these modules with a :class:`Collector` and
writes the table from what actually ran. Under a plain ``pytest`` run the tallies
are kept and ignored.
"""

from __future__ import annotations

import os
from collections import Counter
from dataclasses import dataclass

# category -> (what one test is, what a tally counts)
CATEGORIES = {
    "bad_input": ("bad inputs rejected with a clear error", "inputs"),
    "divergence": ("divergence handling checks", "divergences provoked"),
    "fault": ("fault-injection checks", "faults injected"),
    "memory": ("memory-limit checks", "chunked runs compared"),
    "property": ("properties checked (hypothesis)", "examples run"),
    "files": ("file-safety checks: atomic writes, symlinks, FIFOs, devices, ulimit -f", "hostile writes tried"),
    "signals": ("stopping signals keep the work: SIGINT, SIGTERM, SIGHUP, twice, at random moments, under `set -m`",
                "signals sent"),
    "pipes": ("a closed stdout or stderr never costs the model", "closed streams"),
    "inputs": ("input files read faithfully: BOMs, empty cells, encodings, long fields, pipes without a suffix",
               "files read"),
    "hostile_model": ("hostile model files refused: FIFOs, hand-edited metadata, forged shapes, zip bombs",
                      "crafted files tried"),
    "resume": ("a run stopped at any step (signal, max_time, stop, callback, full disk) resumes bit for bit",
               "stops resumed"),
    "columns": ("a model meets a table by column names: reordered, missing, renamed, duplicated, 10^5 columns",
                "tables read"),
    "ranks": ("MPI that cannot hang: one rank's bad input, failing callback or other settings end every rank "
              "(mpiexec -n 2 and -n 3)", "jobs run"),
}

_tallies: Counter = Counter()


def tally(n: int = 1) -> None:
    """Count ``n`` more things tried by the test running now."""
    test = os.environ.get("PYTEST_CURRENT_TEST", "").rsplit(" (", 1)[0]
    _tallies[test] += n


@dataclass
class Case:
    nodeid: str
    category: str
    test: str  # the first line of the test's docstring
    param: str | None  # a parametrised case's id
    outcome: str = "not run"
    tried: int = 0
    note: str = ""  # why a test was skipped, or the known bug it is marked xfail for


def _describe(item) -> tuple[str, str | None]:
    """(the first line of the test's docstring, the case's id if parametrised)."""
    callspec = getattr(item, "callspec", None)
    doc = (getattr(item.function, "__doc__", None) or item.name).strip().splitlines()[0]
    return doc, callspec.id if callspec is not None else None


class Collector:
    """A pytest plugin object recording each reliability test's category and outcome."""

    def __init__(self):
        self.cases: dict[str, Case] = {}

    def pytest_collection_modifyitems(self, items):
        for item in items:
            category = getattr(getattr(item, "module", None), "RELIABILITY", None)
            if category in CATEGORIES:
                self.cases[item.nodeid] = Case(item.nodeid, category, *_describe(item))

    def pytest_runtest_logreport(self, report):
        case = self.cases.get(report.nodeid)
        if case is None:
            return
        if hasattr(report, "wasxfail"):  # a known bug, marked xfail
            outcome = "xfailed" if report.skipped else "xpassed"
            case.note = report.wasxfail
        else:
            outcome = report.outcome
            if report.skipped and isinstance(report.longrepr, tuple):
                case.note = report.longrepr[2].removeprefix("Skipped: ")
        # the call decides, unless setup or teardown went wrong
        if case.outcome in ("not run", "passed") and (report.when == "call" or outcome != "passed"):
            case.outcome = outcome
        case.tried = _tallies.get(report.nodeid, 0)
