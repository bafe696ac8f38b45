"""The benchmark's report: the targets judged, the Markdown table, and the files written."""

from __future__ import annotations

import json

from ..io.atomic import atomic_write_text
from .timing import DISTURBED
from .workloads import TARGETS, WORKLOADS


def check_targets(results: list[dict]) -> list[dict]:
    """Each target of ``TARGETS`` that ``results`` can judge, with the measured value and whether it
    is met. A row without an optimiser (reports made before there was a choice) trained with SGD."""
    def find(name, backend, dtype, optimizer):
        batch = WORKLOADS[name].batch
        for r in results:
            if (r["workload"], r["backend"], r["dtype"], r["batch"], r["sizes"], r.get("optimizer", "sgd")) == \
                    (name, backend, dtype, batch, list(WORKLOADS[name].sizes), optimizer) and "error" not in r:
                return r
        return None

    out = []
    for name, backend, dtypes, optimizer, against, goal in TARGETS:
        for dtype in dtypes:
            row = find(name, backend, dtype, optimizer)
            if row is None:
                continue
            if against == "numpy":
                cpu = find(name, "numpy", dtype, optimizer)
                value = row["fit"]["samples_per_s"] / cpu["fit"]["samples_per_s"] \
                    if cpu and "fit" in cpu and "fit" in row else None
            else:
                value = row["ratios"].get(against)
            out.append({"workload": name, "backend": backend, "dtype": dtype, "optimizer": optimizer,
                        "against": against, "goal": goal, "value": value,
                        "met": None if value is None else value >= goal})
    return out



def _fmt(x) -> str:
    if x is None:
        return "–"
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def _get(row, *keys):
    for k in keys:
        if not isinstance(row, dict) or k not in row:
            return None
        row = row[k]
    return row


def _us(timing):
    return None if timing is None else timing["seconds"] * 1e6


COLUMNS = [
    ("workload", lambda r: r["workload"]),
    ("backend", lambda r: r["backend"]),
    ("dtype", lambda r: r["dtype"]),
    ("batch", lambda r: str(r["batch"])),
    ("optimizer", lambda r: r.get("optimizer", "sgd")),
    ("fit µs/step", lambda r: _fmt(_us(r.get("fit")))),
    ("fit samples/s", lambda r: _fmt(_get(r, "fit", "samples_per_s"))),
    ("fit GFLOP/s", lambda r: _fmt(_get(r, "fit", "gflops"))),
    ("GEMM GFLOP/s", lambda r: _fmt(_get(r, "gemm", "gflops"))),
    ("% GEMM", lambda r: _fmt(None if _get(r, "ratios", "gemm") is None else 100 * r["ratios"]["gemm"])),
    ("step µs", lambda r: _fmt(_us(r.get("step")))),
    ("fit − step µs", lambda r: _fmt(None if "fit" not in r or "step" not in r else _us(r["fit"]) - _us(r["step"]))),
    ("fwd samples/s", lambda r: _fmt(_get(r, "forward", "samples_per_s"))),
    ("torch µs/step", lambda r: _fmt(_us(_get(r, "peers", "torch", "train")))),
    ("× torch", lambda r: _fmt(_get(r, "ratios", "torch"))),
    ("× torch fused", lambda r: _fmt(_get(r, "ratios", "torch_fused"))),
    ("× torch compiled", lambda r: _fmt(_get(r, "ratios", "torch_compile"))),
    ("torch compile s", lambda r: _fmt(_get(r, "peers", "torch_compile", "compile_s"))),
    ("triad GB/s", lambda r: _fmt(_get(r, "triad", "gflops"))),
    ("× torch fwd", lambda r: _fmt(_get(r, "ratios", "torch_forward"))),
    ("sklearn µs/step", lambda r: _fmt(_us(_get(r, "peers", "sklearn", "train")))),
    ("× sklearn", lambda r: _fmt(_get(r, "ratios", "sklearn"))),
    ("others' CPU %", lambda r: _fmt(None if r.get("others_cpu") is None else 100 * r["others_cpu"])),
]


def markdown(report: dict) -> str:
    """The report as Markdown: the machine, a table with one row per case, notes, and the targets."""
    meta, results = report["meta"], report["results"]
    lines = [f"- command: `{meta['command']}`" + (f" at {meta['commit']}" if meta.get("commit") else ""),
             f"- machine: {meta['cpu']} ({meta['cores']} cores), {meta['threads']} threads; {meta['platform']}",
             "- versions: " + ", ".join(f"{k} {v}" for k, v in meta["versions"].items())]
    if meta.get("thread_pools"):
        lines.append("- thread pools: " + "; ".join(meta["thread_pools"]))
    lines += [f"- {name}: {what}" for name, what in meta["backends"].items()]
    lines += [f"- unavailable: {name}: {why}" for name, why in meta["unavailable"].items()]
    if meta["smoke"]:
        lines.append("- smoke mode: tiny sizes, one repeat; the numbers below are not measurements")
    lines += ["", "| " + " | ".join(h for h, _ in COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)] if results \
        else ["", "No results."]
    for r in results:
        if "error" in r:
            cells = [cell(r) for _, cell in COLUMNS[:5]] + [f"error: {r['error']}"]
            cells += [""] * (len(COLUMNS) - len(cells))
        else:
            cells = [cell(r) for _, cell in COLUMNS]
        lines.append("| " + " | ".join(cells) + " |")
    skipped = sorted({f"{name} on {r['workload']} ({r['backend']}): {p['skipped']}"
                      for r in results for name, p in r.get("peers", {}).items() if "skipped" in p})
    lines += [""] + [f"- skipped: {s}" for s in skipped]
    disturbed = [r for r in results if (r.get("others_cpu") or 0.0) > DISTURBED]
    if disturbed:
        lines.append(f"- **{len(disturbed)} of {len(results)} rows ran while other processes took over "
                     f"{DISTURBED:.0%} of the CPU (last column): their timings are not reliable**")
    if report.get("targets"):
        lines += ["", targets_markdown(report["targets"])]
    return "\n".join(lines) + "\n"


def targets_markdown(targets: list[dict]) -> str:
    """A Markdown table of :func:`check_targets`' verdicts."""
    lines = ["| target | measured | met |", "| --- | --- | --- |"]
    for t in targets:
        what = {"gemm": "of the GEMM ceiling", "numpy": "× bpgpu on NumPy"}.get(t["against"], f"× {t['against']}")
        goal = f"{100 * t['goal']:.0f} %" if t["against"] == "gemm" else f"{t['goal']:g}"
        value = "–" if t["value"] is None else \
            (f"{100 * t['value']:.0f} %" if t["against"] == "gemm" else f"{t['value']:.2f}")
        met = {True: "yes", False: "**no**", None: "not measured"}[t["met"]]
        lines.append(f"| {t['workload']} {t['backend']} {t['dtype']} {t.get('optimizer', 'sgd')}: ≥ {goal} {what} "
                     f"| {value} | {met} |")
    return "\n".join(lines)




def write(report: dict, *, json_path=None, markdown_path=None, plot_path=None) -> str:
    """The report as Markdown; also written to ``markdown_path``, as JSON to ``json_path`` and as
    a throughput plot (:func:`bpgpu.plotting.throughput`) to ``plot_path``, each where given and
    each atomically (:mod:`bpgpu.io.atomic`)."""
    text = markdown(report)
    if json_path:
        atomic_write_text(json_path, json.dumps(report, indent=1))
    if markdown_path:
        atomic_write_text(markdown_path, text)
    if plot_path and report["results"]:
        from ..plotting import throughput

        throughput(report["results"], plot_path)
    return text
