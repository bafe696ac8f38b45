"""bpgpu bench: its workloads, data, timer, report and command line, and that its peers
train the same network as bpgpu (no timing is asserted anywhere)."""

import json

import numpy as np
import pytest

from bpgpu import bench, plotting
from bpgpu.bench import runners, timing
from bpgpu.worked_example import T, X as X0


def test_workload_weights_count_every_theta_entry():
    assert {name: w.weights for name, w in bench.WORKLOADS.items()} == {
        "W0": 3 * 2 + 2 * 1,
        "W1": 65 * 64 + 65 * 64 + 65 * 1,
        "W2": 785 * 1024 + 1025 * 1024 + 1025 * 10,
        "W3": 1025 * 4096 + 4097 * 4096 + 4097 * 1024,
    }


def test_smoke_workloads_keep_depth_activations_and_loss():
    for name, w in bench.WORKLOADS.items():
        small = bench.workload(name, smoke=True)
        assert len(small.sizes) == len(w.sizes)
        assert (small.activation, small.output, small.loss, small.bias) == (w.activation, w.output, w.loss, w.bias)
        assert small.batch <= bench.SMOKE_BATCH and small.weights <= w.weights


def test_data_for_w0_starts_with_the_worked_example():
    X, Y, labels = bench.make_data(bench.WORKLOADS["W0"], 3, 4)
    assert X.shape == (12, 3) and Y.shape == (12, 1) and labels is None
    np.testing.assert_array_equal(X[:3], X0)
    np.testing.assert_array_equal(Y[:3, 0], T)


def test_softmax_data_has_every_class_in_every_batch():
    w = bench.workload("W2", smoke=True)
    X, Y, labels = bench.make_data(w, 16, 3)
    assert X.shape == (48, 49) and Y.shape == (48, 10)
    np.testing.assert_array_equal(Y.argmax(axis=1), labels)
    np.testing.assert_array_equal(Y.sum(axis=1), 1.0)
    for batch in labels.reshape(3, 16):
        assert set(batch) == set(range(10))


class FakeClock:
    """perf_counter for bench.timing.measure, and runners whose steps take given seconds each."""

    def __init__(self):
        self.now, self.calls, self.syncs = 0.0, [], 0

    def runner(self, name, per_step):
        def run(steps):
            self.calls.append((name, steps))
            self.now += steps * per_step
            return steps

        return run, self.sync

    def sync(self):
        self.syncs += 1


@pytest.fixture
def clock(monkeypatch):
    clock = FakeClock()
    monkeypatch.setattr(timing.time, "perf_counter", lambda: clock.now)
    return clock


def test_measure_warms_up_calibrates_then_repeats(clock):
    timing = bench.measure({"a": clock.runner("a", 0.01)}, min_time=0.2, repeats=5)
    # warm-up 1, doubling until a call lasts min_time/4 (1, 2, 4, 8), then 5 × 0.2 s / 0.01 s
    assert [steps for _, steps in clock.calls] == [1, 1, 2, 4, 8] + [20] * 5
    assert clock.syncs == 2 * len(clock.calls)
    assert timing == {"a": pytest.approx({"seconds": 0.01, "steps": 20, "repeats": 5, "spread": 0.0})}


def test_measure_runs_one_after_another_and_repeats_slow_steps_three_times(clock):
    timing = bench.measure({"fast": clock.runner("fast", 0.01), "slow": clock.runner("slow", 2.0)},
                           min_time=0.2, repeats=5)
    # the slow one's calibration call lasted min_time already: it is its first repeat
    assert clock.calls == [("fast", s) for s in [1, 1, 2, 4, 8] + [20] * 5] + [("slow", 1)] * 4
    assert timing["slow"] == pytest.approx({"seconds": 2.0, "steps": 1, "repeats": 3, "spread": 0.0})
    assert timing["fast"]["repeats"] == 5


def test_later_rounds_warm_up_again_then_repeat_but_not_slow_steps(clock):
    timing = bench.measure({"fast": clock.runner("fast", 0.01), "slow": clock.runner("slow", 2.0)},
                           min_time=0.2, repeats=5, rounds=2)
    assert clock.calls[14:] == [("fast", 20)] * (1 + 5)
    assert timing["fast"]["repeats"] == 10 and timing["slow"]["repeats"] == 3


def test_steps_become_part_of_an_epoch_or_whole_epochs():
    assert runners.epochs_and_rows(3, 16, 4) == (1, 48)
    assert runners.epochs_and_rows(4, 16, 4) == (1, 64)
    assert runners.epochs_and_rows(10, 16, 4) == (2, 64)  # rounded to whole epochs


@pytest.fixture(scope="module")
def smoke_row():
    return bench.run_case(bench.workload("W1", smoke=True), "numpy", "float32", 16, peers=(), min_time=0.0, repeats=1)


def test_run_case_times_fit_step_forward_and_the_gemm_ceiling(smoke_row):
    r = smoke_row
    assert (r["workload"], r["backend"], r["dtype"], r["batch"], r["weights"]) == ("W1", "numpy", "float32", 16, 8385)
    for name in bench.MEASURES:
        assert r[name]["samples_per_s"] == pytest.approx(16 / r[name]["seconds"])
    assert r["fit"]["gflops"] == pytest.approx(6 * 8385 * 16 / r["fit"]["seconds"] / 1e9)
    assert r["forward"]["gflops"] == pytest.approx(2 * 8385 * 16 / r["forward"]["seconds"] / 1e9)
    assert r["gemm"]["shape"] == [16, 64, 64]
    assert r["gemm"]["gflops"] == pytest.approx(2 * 16 * 64 * 64 / r["gemm"]["seconds"] / 1e9)
    assert r["ratios"] == {"gemm": pytest.approx(r["fit"]["gflops"] / r["gemm"]["gflops"])}
    assert r["peers"] == {}
    assert (r["optimizer"], r["lr"]) == ("sgd", bench.WORKLOADS["W1"].lr)


def test_each_optimizer_has_a_learning_rate_for_every_workload():
    assert bench.OPTIMIZERS == ("sgd", "adam")
    for w in bench.WORKLOADS.values():
        assert w.lr_for("sgd") == w.lr and 0 < w.lr_for("adam") <= 1e-3


def test_markdown_has_one_row_per_case_and_the_plot_is_a_png(smoke_row, tmp_path):
    report = {"meta": {"command": "bpgpu bench", "cpu": "cpu", "cores": 2, "threads": 2, "platform": "linux",
                       "versions": {"numpy": "2"}, "backends": {}, "unavailable": {"cupy": "no GPU"}, "smoke": True},
              "results": [smoke_row, {"workload": "W2", "backend": "numpy", "dtype": "float32", "batch": 16,
                                      "sizes": [1, 1], "error": "RuntimeError: boom"}],
              "targets": []}
    text = bench.markdown(report)
    rows = [line for line in text.splitlines() if line.startswith("| W")]
    assert len(rows) == 2 and rows[0].startswith("| W1 | numpy | float32 | 16 |")
    assert "error: RuntimeError: boom" in rows[1]
    assert "unavailable: cupy: no GPU" in text
    pytest.importorskip("matplotlib")
    plotting.throughput(report["results"], tmp_path / "plot.png")
    assert (tmp_path / "plot.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _row(name, backend, dtype, samples_per_s, optimizer="sgd", **ratios):
    w = bench.WORKLOADS[name]
    return {"workload": name, "backend": backend, "dtype": dtype, "batch": w.batch, "sizes": list(w.sizes),
            "optimizer": optimizer, "fit": {"samples_per_s": samples_per_s}, "ratios": ratios}


def test_targets_judge_each_measured_case_at_its_own_batch_size():
    results = [_row("W1", "numpy", "float32", 1.0, torch=2.0),  # sklearn not measured
               _row("W2", "numpy", "float64", 1.0, gemm=0.5),
               _row("W3", "numpy", "float32", 10.0),
               _row("W3", "cupy", "float32", 2000.0, torch=1.5, gemm=0.9),
               {**_row("W0", "numpy", "float32", 1.0, torch=100.0), "batch": 16}]  # not W0's batch
    found = {(t["workload"], t["backend"], t["dtype"], t["against"]): (t["value"], t["met"])
             for t in bench.check_targets(results)}
    assert found == {("W1", "numpy", "float32", "torch"): (2.0, True),
                     ("W1", "numpy", "float32", "sklearn"): (None, None),
                     ("W2", "numpy", "float64", "gemm"): (0.5, False),
                     ("W3", "cupy", "float32", "torch"): (1.5, True),
                     ("W3", "cupy", "float32", "gemm"): (0.9, True),
                     ("W3", "cupy", "float32", "numpy"): (200.0, True)}


def test_targets_are_per_optimizer_and_rows_without_one_trained_with_sgd():
    sgd = _row("W1", "numpy", "float32", 1.0, torch=2.5)
    del sgd["optimizer"]  # a report from before --optimizers
    results = [sgd, _row("W1", "numpy", "float32", 1.0, "adam", torch=2.5),
               _row("W2", "numpy", "float32", 1.0, "adam", torch=1.3, gemm=0.5)]  # no SGD target for Adam rows
    found = {(t["workload"], t["optimizer"], t["against"]): (t["goal"], t["met"]) for t in bench.check_targets(results)}
    assert found == {("W1", "sgd", "torch"): (1.9, True), ("W1", "sgd", "sklearn"): (2.5, None),
                     ("W1", "adam", "torch"): (3.0, False), ("W2", "adam", "torch"): (1.2, True)}
    assert "| W2 numpy float32 adam: ≥ 1.2 × torch | 1.30 | yes |" in bench.targets_markdown(bench.check_targets(results))


def test_command_line_smoke_run_writes_json_and_markdown(tmp_path, capsys):
    out = tmp_path / "bench.json"
    code = bench.main(["--smoke", "--workloads", "W0,W2", "--backends", "numpy", "--peers", "none",
                       "--measures", "fit", "--json", str(out), "--markdown", str(tmp_path / "bench.md")])
    assert code == 0
    report = json.loads(out.read_text())
    assert [(r["workload"], r["batch"]) for r in report["results"]] == [("W0", 3), ("W2", 16)]
    assert all("step" not in r and "fit" in r for r in report["results"])
    assert report["meta"]["smoke"] is True and report["targets"] == []
    assert (tmp_path / "bench.md").read_text() in capsys.readouterr().out


def test_plot_measures_several_batch_sizes_so_each_series_is_a_line(tmp_path, capsys):
    """bench.png had one dot per series (one batch size per workload): --plot alone now also
    measures 1/16 and 1/4 of each workload's batch, and each series joins those points."""
    pytest.importorskip("matplotlib")
    out = tmp_path / "bench.json"
    assert bench.main(["--smoke", "--workloads", "W0,W1", "--backends", "numpy", "--peers", "none", "--measures",
                       "fit", "--json", str(out), "--plot", str(tmp_path / "bench.png")]) == 0
    results = json.loads(out.read_text())["results"]
    assert [(r["workload"], r["batch"]) for r in results] == [("W0", 1), ("W0", 3), ("W1", 1), ("W1", 4), ("W1", 16)]
    lines = plotting.series(results, "W1")
    assert list(lines) == ["bpgpu numpy float32"]
    assert [m for m, _ in lines["bpgpu numpy float32"]] == [1, 4, 16]
    assert [rate for _, rate in lines["bpgpu numpy float32"]] == [r["fit"]["samples_per_s"] for r in results[2:]]
    assert (tmp_path / "bench.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_batch_sizes_given_are_measured_as_given_with_or_without_a_plot():
    from argparse import Namespace

    from bpgpu.bench.cli import batch_sizes

    w = bench.workload("W2")
    assert batch_sizes(Namespace(batch_sizes=None, plot=None), w) == [1024]
    assert batch_sizes(Namespace(batch_sizes=None, plot="b.png"), w) == [64, 256, 1024]
    assert batch_sizes(Namespace(batch_sizes=[8, 2], plot="b.png"), w) == [8, 2]


def test_series_sorts_points_and_names_peers_and_optimizers():
    row = {"workload": "W1", "backend": "numpy", "dtype": "float32", "optimizer": "adam",
           "fit": {"samples_per_s": 5.0}, "peers": {"torch": {"train": {"samples_per_s": 2.0}}, "sklearn": {"skipped": "x"}}}
    rows = [{**row, "batch": 64}, {**row, "batch": 16, "fit": {"samples_per_s": 1.0}},
            {**row, "batch": 32, "error": "MemoryError"}]
    assert plotting.series(rows, "W1") == {"bpgpu numpy float32 adam": [(16, 1.0), (64, 5.0)],
                                            "torch cpu float32 adam": [(16, 2.0), (64, 2.0)]}


def test_smoke_run_with_sgd_and_adam_trains_bpgpu_and_every_installed_peer_with_each(tmp_path, capsys):
    """CI's pass through the Adam path: bpgpu's fit and step, torch.optim.Adam, scikit-learn's adam."""
    out = tmp_path / "bench.json"
    assert bench.main(["--smoke", "--workloads", "W1,W2", "--backends", "numpy", "--optimizers", "sgd,adam",
                       "--json", str(out)]) == 0
    report = json.loads(out.read_text())
    assert report["meta"]["optimizers"] == ["sgd", "adam"]
    assert [(r["workload"], r["optimizer"]) for r in report["results"]] == \
        [("W1", "sgd"), ("W1", "adam"), ("W2", "sgd"), ("W2", "adam")]
    for r in report["results"]:
        assert r["lr"] == bench.WORKLOADS[r["workload"]].lr_for(r["optimizer"])
        assert all(name in r for name in bench.MEASURES)
        for name, peer in r["peers"].items():
            assert "train" in peer, (name, peer)
        if "sklearn" in r["peers"]:
            assert r["peers"]["sklearn"]["solver"] == r["optimizer"]
    rows = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| W")]
    assert [row.split(" | ")[4] for row in rows] == ["sgd", "adam"] * 2


def test_unavailable_backend_is_reported_not_fatal(tmp_path, capsys):
    from bpgpu.backend import BackendUnavailable, get_backend

    try:
        get_backend("cupy")
        pytest.skip("CuPy works here")
    except BackendUnavailable:
        pass
    out = tmp_path / "bench.json"
    assert bench.main(["--smoke", "--backends", "cupy", "--peers", "none", "--json", str(out)]) == 1
    report = json.loads(out.read_text())
    assert report["results"] == [] and "cupy" in report["meta"]["unavailable"]
    assert "skipping cupy" in capsys.readouterr().err


@pytest.mark.parametrize("argv, expected", [
    (["--workloads", "W9"], "comma-separated list of names from W0, W1, W2, W3"),
    (["--dtypes", "float16"], "comma-separated list of names from float32, float64"),
    (["--batch-sizes", "0,4"], "comma-separated list of positive integers"),
    (["--peers", "jax"], "comma-separated list of names from torch, torch_fused, torch_compile, sklearn"),
    (["--optimizers", "rmsprop"], "comma-separated list of names from sgd, adam"),
    (["--repeats", "0"], "expected an integer >= 1, got '0'"),
    (["--min-time", "-1"], "expected a number >= 0.0, got '-1'"),
    (["--threads", "two"], "expected an integer >= 1, got 'two'"),
])
def test_bad_options_are_usage_errors(argv, expected, capsys):
    with pytest.raises(SystemExit) as stop:
        bench.main(argv)
    assert stop.value.code == 2
    assert expected in capsys.readouterr().err


def _two_bpgpu_steps(w, optimizer="sgd", dtype="float64"):
    """(host thetas before, host thetas after two steps of ``optimizer`` on two batches, X, Y, labels).

    ``optimizer``: "sgd" or "adam" at the workload's learning rate for it, or an Optimizer (its own lr)."""
    net = w.network("numpy", dtype)
    before = [t.copy() for t in net.thetas]
    X, Y, labels = bench.make_data(w, w.batch, 2)
    lr = w.lr_for(optimizer) if isinstance(optimizer, str) else None
    net.fit(X, Y, epochs=1, optimizer=optimizer, lr=lr, batch_size=w.batch, shuffle=False)
    return before, net.thetas, X, Y, labels


@pytest.mark.parametrize("optimizer", bench.OPTIMIZERS)
@pytest.mark.parametrize("name", ["W0", "W1", "W2"])
def test_torch_peer_trains_the_same_network(name, optimizer):
    """bpgpu.Adam puts ε on the bias-corrected √v̂ as torch.optim.Adam does: the same weights."""
    torch = pytest.importorskip("torch")
    w = bench.workload(name, smoke=True)
    before, after, X, Y, labels = _two_bpgpu_steps(w, optimizer)
    model, loss_of = bench.torch_model(w, before, "cpu", "float64")
    optimizer = bench.torch_optimizer(optimizer, model.parameters(), w.lr_for(optimizer))
    targets = torch.from_numpy(labels) if w.loss == "cross_entropy" else torch.from_numpy(Y)
    for i in range(2):
        rows = slice(i * w.batch, (i + 1) * w.batch)
        optimizer.zero_grad()
        loss_of(model(torch.from_numpy(X[rows])), targets[rows]).backward()
        optimizer.step()
    linears = [m for m in model if isinstance(m, torch.nn.Linear)]
    for theta, linear in zip(after, linears):
        W = theta[:, 1:] if w.bias else theta
        np.testing.assert_allclose(linear.weight.detach().numpy(), W, rtol=1e-10, atol=1e-12)
        if w.bias:
            np.testing.assert_allclose(linear.bias.detach().numpy(), theta[:, 0], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("optimizer", bench.OPTIMIZERS)
@pytest.mark.parametrize("name", ["W1", "W2"])
def test_sklearn_peer_trains_the_same_network(name, optimizer):
    """scikit-learn's adam puts ε on the uncorrected √v: its numbers are bpgpu.sklearn.ScikitAdam's,
    which is what bpgpu trains with here (bpgpu.Adam's differ by up to about ε/√v)."""
    pytest.importorskip("sklearn")
    from bpgpu.sklearn import ScikitAdam

    w = bench.workload(name, smoke=True)
    before, after, X, Y, labels = _two_bpgpu_steps(w, ScikitAdam(w.adam_lr) if optimizer == "adam" else optimizer)
    model, targets = bench.sklearn_model(w, w.batch, optimizer)
    y = labels if targets == "labels" else Y[:, 0]
    bench.sklearn_fit(model, X[:w.batch], y[:w.batch], 1)
    bench.sklearn_set_thetas(model, before, "float64")
    bench.sklearn_fit(model, X, y, 1)
    for theta, W, b in zip(after, model.coefs_, model.intercepts_):
        np.testing.assert_allclose(W.T, theta[:, 1:], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(b, theta[:, 0], rtol=1e-10, atol=1e-12)


def test_peers_refuse_networks_they_cannot_express():
    pytest.importorskip("sklearn")
    with pytest.raises(bench.Skip, match="always has biases"):
        bench.sklearn_model(bench.WORKLOADS["W0"], 3)
    with pytest.raises(bench.Skip, match="averages over the 1024 outputs"):
        bench.sklearn_model(bench.WORKLOADS["W3"], 4096)
    with pytest.raises(bench.Skip, match="every class in a batch"):
        bench.sklearn_model(bench.WORKLOADS["W2"], 8)


def test_a_disturbed_case_runs_again_and_the_least_disturbed_row_is_kept(monkeypatch):
    shares = iter([0.5, 0.3, 0.4, 0.5])
    monkeypatch.setattr(timing, "others_cpu", lambda since: next(shares))
    monkeypatch.setattr(timing, "wait_for_quiet", lambda: None)
    calls = []

    def case():
        calls.append(1)
        return {"run": len(calls)}

    assert timing.undisturbed(case, retries=2) == {"run": 2, "others_cpu": 0.3}
    assert timing.undisturbed(case, retries=0) == {"run": 4, "others_cpu": 0.5}  # measured, not retried


def test_others_cpu_is_a_share_of_the_machine():
    since = timing.cpu_sample()
    if since is None:
        pytest.skip("no /proc here")
    sum(i * i for i in range(200_000))  # this process's own work is not counted
    assert timing.others_cpu(since) is None or timing.others_cpu(since) >= 0.0


def test_plot_without_matplotlib_fails_before_measuring(monkeypatch, capsys):
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "matplotlib" else real(name, *a))
    assert bench.main(["--smoke", "--workloads", "W0", "--plot", "never.png"]) == 2
    captured = capsys.readouterr()
    assert "--plot needs matplotlib" in captured.err and captured.out == ""
