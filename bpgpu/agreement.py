"""What the ranks of a data-parallel ``fit`` must agree on, and one rank's error raised on all.

Ranks that disagree do not fail: given different epochs or stopping rules they wait for ever
in a collective that some rank never reaches; given a different seed or optimiser they train
on to different weights. And a rank whose input is rejected, or whose callback raises, leaves
the others waiting. So before the first step every rank shares, in one collective, its error
(or none), its settings and its row count (:class:`Pact`); during training an error waits
for the epoch's vote (:func:`held_back`), which then raises it on every rank.
"""

from __future__ import annotations

import builtins
import hashlib
import json

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from .distributed import Communicator


def mark_every_rank(err: BaseException) -> BaseException:
    """``err``, marked as raised alike on every rank: no rank is left waiting, so none
    needs MPI_Abort, and one rank saying it is enough."""
    err.every_rank = True
    return err


def raised_everywhere(err: BaseException) -> bool:
    """Whether ``err`` is raised alike on every rank (see :func:`mark_every_rank`)."""
    return getattr(err, "every_rank", False)


def _failure(err: BaseException | None) -> dict | None:
    """What other ranks need to raise ``err`` too: its kind and one line of text."""
    if err is None:
        return None
    text = " ".join(str(err).split()) or type(err).__name__
    return {"kind": type(err).__name__, "text": text[:1000]}


def _raise_first(failures: list, size: int, own: BaseException | None) -> None:
    """Raise the lowest failing rank's error on this rank (nothing if none failed): its
    kind where that is a built-in exception (ValueError, TypeError, …), else RankError."""
    failed = [(r, f) for r, f in enumerate(failures) if f]
    if not failed:
        return
    rank, f = failed[0]
    kind = getattr(builtins, f["kind"], None)
    kind = kind if isinstance(kind, type) and issubclass(kind, Exception) else RankError
    others = f" (and {len(failed) - 1} more ranks)" if len(failed) > 1 else ""
    err = mark_every_rank(kind(f"rank {rank} of {size}: {f['text']}{others}"))
    raise err from own


class RankError(RuntimeError):
    """One rank's error, of a kind that is not built in, raised on every rank."""


def _shown(ranks: list[int]) -> str:
    return f"rank {ranks[0]}" if len(ranks) == 1 else f"ranks {', '.join(map(str, ranks[:-1]))} and {ranks[-1]}"


def disagreement(terms: list[dict]) -> str:
    """'' when every rank's ``terms`` are equal, else what differs, naming the ranks:
    "epochs: 5 on ranks 0 and 2, 7 on rank 1"."""
    differ = []
    for key in terms[0]:
        values = [json.dumps(t.get(key), sort_keys=True) for t in terms]
        if len(set(values)) > 1:
            by_value = {v: [r for r, w in enumerate(values) if w == v] for v in dict.fromkeys(values)}
            differ.append(f"{key}: " + ", ".join(f"{v} on {_shown(r)}" for v, r in by_value.items()))
    return "; ".join(differ)


def _plain(value):
    """A NumPy scalar as its Python number (json cannot write one), anything else as text."""
    return value.item() if hasattr(value, "item") else str(value)


def digest(arrays) -> str:
    """A short fingerprint of host arrays' bytes (equal arrays, equal fingerprints)."""
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:12]


def training_terms(net, opt, **options) -> dict:
    """What every rank's ``fit`` must share for the ranks to take the same steps to the same
    weights: the architecture, dtype and seed, the initial weights and optimiser state
    (fingerprinted), the optimiser and its hyper-parameters, and ``options`` (epochs,
    batch size, stopping rules, …; JSON values)."""
    host = net.backend.to_host
    state = [host(a) for a in opt.state.values()]
    return {**net.config(), "initial weights (fingerprint)": digest([host(net.params)]),
            "optimizer": opt.name, **opt.hyperparameters(), "optimizer steps": opt.t,
            "optimizer state (fingerprint)": digest(state), **options}


class Pact:
    """The ranks' agreement before the first step, in one collective.

    ``with Pact(comm) as pact:`` around what each rank checks and prepares, setting
    ``pact.terms`` (a JSON dict, or a function making it, called only with ``comm``: the
    weights' fingerprint is a pass over them) and ``pact.rows`` (its row count) at the end.
    On leaving, every rank shares (its error or None, its terms, its rows): one rank's error is raised
    on every rank (so no rank waits for ever in the first step's collective), and terms
    that differ raise the same ValueError everywhere, naming what differs on which rank.
    ``pact.counts`` is then every rank's rows. Without ``comm``, nothing is shared.
    """

    def __init__(self, comm: Communicator | None, rule: str = "fit(comm=): every rank must be given the same settings"):
        self.comm, self.rule, self.terms, self.rows, self.counts = comm, rule, {}, 0, None

    def __enter__(self) -> "Pact":
        return self

    def __exit__(self, kind, err, tb) -> bool:
        if self.comm is None or (err is not None and not isinstance(err, Exception)):
            return False  # a Ctrl-C or exit is not an error to share
        terms = None if err else self.terms() if callable(self.terms) else self.terms
        mine = json.dumps({"failure": _failure(err), "terms": terms, "rows": self.rows}, default=_plain)
        everyone = [json.loads(text) for text in self.comm.share(mine)]
        _raise_first([e["failure"] for e in everyone], self.comm.size, err)
        differ = disagreement([e["terms"] for e in everyone])
        if differ:
            raise mark_every_rank(ValueError(f"{self.rule}; {differ}"))
        self.counts = [e["rows"] for e in everyone]
        return False


def share_failure(comm: Communicator, err: BaseException | None) -> None:
    """After a vote found that some rank failed: every rank raises the lowest failing rank's
    error (one more collective, only on this path)."""
    _raise_first([json.loads(t) for t in comm.share(json.dumps(_failure(err)))], comm.size, err)


def held_back(comm: Communicator | None, callback):
    """``callback``, whose exception on one of several ranks waits for the epoch's vote
    (:meth:`Communicator.vote` then raises it on every rank) instead of leaving the
    other ranks waiting in the next collective. Without ``comm``: ``callback`` itself."""
    if comm is None or callback is None:
        return callback

    def call(*args):
        try:
            return callback(*args)
        except Exception as err:
            comm.failure = err
            return False

    return call
