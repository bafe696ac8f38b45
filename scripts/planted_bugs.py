"""Plant known bugs, one at a time, in a scratch copy of the repository and report which
tests catch each one (a mutation test by hand, for the bugs that once survived the suite).

    python scripts/planted_bugs.py                      # the new effect/reference tests
    python scripts/planted_bugs.py tests                # the whole suite
    BUG=CLI python scripts/planted_bugs.py              # only the bugs whose name has "CLI"

Each bug is a text replacement in one file. The replacements are written against the code
as it is when this script was last updated; a bug whose text is no longer found is reported
as "not applicable" (update its pattern after a rewrite), never counted as caught.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_TESTS = ["tests/test_reference.py", "tests/test_gradcheck_fails.py", "tests/test_fit_effects.py",
                 "tests/test_cli_effects.py", "tests/test_resume.py", "tests/test_cli_resume.py", "tests/test_kept_state.py",
                 "tests/test_cli_lr_schedule.py", "tests/test_cli_standardize_target.py", "tests/test_csv_paths.py",
                 "tests/test_distributed_cli.py"]

# name: [(file, old, new), ...]: every replacement must apply
BUGS = {
    # The flat-buffer network: ‖W‖² is one dot product over the weights' front slice of
    # the flat parameter vector (the biases sit behind it), D's λ term one fused add.
    "λ doubled in J and D": [
        ("bpgpu/network.py", "self._add_scaled(DW, W, self.lam * scale)", "self._add_scaled(DW, W, 2 * self.lam * scale)"),
        ("bpgpu/network.py", "dot(W, W) * (0.5 * self.lam * scale)", "dot(W, W) * (1.0 * self.lam * scale)"),
    ],
    "bias regularised in J and D": [
        ("bpgpu/network.py", "W, DW = self._theta[:self.n_weights], self._D[:self.n_weights]", "W, DW = self._theta, self._D"),
    ],
    "λ dropped from D only": [
        ("bpgpu/network.py", "self._add_scaled(DW, W, self.lam * scale)", "self._add_scaled(DW, W, 0.0)"),
    ],
    # The activations' in-place derivatives and relu (mutmut mutates them too; these are
    # the mistakes a person would make):
    "tanh′ = 1 + a²": [
        ("bpgpu/activations.py", "d *= 1.0 - a * a", "d *= 1.0 + a * a"),
    ],
    "sigmoid′ = a(1 + a)": [
        ("bpgpu/activations.py", "d *= a * (1.0 - a)", "d *= a * (1.0 + a)"),
    ],
    "relu′ 1 at dead units": [
        ("bpgpu/activations.py", "xp.ceil(a, out=a)", "xp.ceil(a + 1.0, out=a)\n    xp.minimum(a, 1.0, out=a)"),
    ],
    "relu passes negatives down to −0.1": [
        ("bpgpu/activations.py", "xp.maximum(z, 0.0, out=z)", "xp.maximum(z, -0.1, out=z)"),
    ],
    "gradient_check returns 0": [
        ("bpgpu/gradcheck.py", "return worst / max(scale, 1e-12)", "return 0.0"),
    ],
    "fit ignores nesterov=": [
        ("bpgpu/training.py", "dict(momentum=momentum, nesterov=nesterov)", "dict(momentum=momentum, nesterov=False)"),
    ],
    "fit ignores beta2=": [
        ("bpgpu/training.py", "dict(beta1=beta1, beta2=beta2, eps=eps)", "dict(beta1=beta1, beta2=0.999, eps=eps)"),
    ],
    "early stopping keeps the last weights": [
        ("bpgpu/training.py", "watch.best.restore(net, opt)", "pass"),
    ],
    "CLI ignores --patience": [
        ("bpgpu/cli/train.py", "patience=o.patience, chunk_size", "patience=None, chunk_size"),
    ],
    "CLI ignores --no-shuffle": [
        ("bpgpu/cli/train.py", "shuffle=o.shuffle, max_time", "shuffle=True, max_time"),
    ],
    "CLI ignores --nesterov": [
        ("bpgpu/cli/train.py", "nesterov=o.nesterov, beta1", "nesterov=False, beta1"),
    ],
    "CLI trains on the validation rows": [
        ("bpgpu/cli/sources.py", "return (take(X, perm[held:]), take(Y, perm[held:])), (",
         "return (take(X, perm), take(Y, perm)), ("),
    ],
    "CLI reads every CSV's first row as a header": [
        ("bpgpu/cli/tables.py", "    if _has_header(rows):", "    if True:"),
    ],
    "CLI ignores --data-seed": [
        ("bpgpu/cli/sources.py", "common = dict(backend=backend, dtype=o.dtype, seed=o.data_seed)",
         "common = dict(backend=backend, dtype=o.dtype, seed=o.seed)"),
    ],
    "CLI ignores --noise": [
        ("bpgpu/cli/sources.py", 'noise = {} if o.noise is None else {"noise": o.noise}', "noise = {}"),
    ],
    "fit ignores shuffle=False": [
        ("bpgpu/batches.py", "self.shuffle = shuffle and len(self.slices) > 1", "self.shuffle = len(self.slices) > 1"),
    ],
    "CLI ignores --batch-size full": [
        ("bpgpu/cli/train.py", "batch_size=o.batch_size or None", "batch_size=o.batch_size or 64"),
    ],
    "CLI ignores --quiet": [
        ("bpgpu/cli/progress.py", "self.quiet = bool(o.quiet)", "self.quiet = False"),
    ],
    "CLI ignores --log-every": [
        ("bpgpu/cli/progress.py", "every = o.log_every\n", "every = None\n"),
    ],
    # Nine that once survived the suite (issue 19); tests/test_kept_state.py, test_resume.py
    # and test_cli_resume.py catch them now.
    "rollback keeps optimiser state made after the snapshot": [
        ("bpgpu/optimizers.py", "self.state = {key: self.state[key] for key in saved}", "self.state = dict(self.state)"),
    ],
    "save sorts the class names": [
        ("bpgpu/io/persistence.py", "    return list(classes)\n", "    return sorted(classes)\n"),
    ],
    "history.json after --resume drops the earlier steps and samples": [
        ("bpgpu/cli/train.py", 'for k in ("steps", "samples", "elapsed")}', 'for k in ("elapsed",)}'),
    ],
    "a scaler without classes saved as version 1": [
        ("bpgpu/io/persistence.py", "else 1 if scaler is None and classes is None else 2",
         "else 1 if classes is None else 2"),
    ],
    "a target scaler saved as version 2 (an older bpgpu would predict in scaled units)": [
        ("bpgpu/io/persistence.py", "version = 3 if target_scaler is not None else", "version = 2 if target_scaler is not None else"),
    ],
    "predict forgets the target scaler": [
        ("bpgpu/cli/predict.py", "        A = checkpoint.target_scaler.inverse_transform(A)\n", "        pass\n"),
    ],
    "a resumed --lr-schedule starts again from the current rate": [
        ("bpgpu/cli/train.py", 'lr0 = saved["lr0"] if saved and', 'lr0 = optimizer.lr if saved and'),
    ],
    "an adaptive schedule's plateau count not carried into a resumed run": [
        ("bpgpu/cli/lr_schedule.py", 'stale=saved.get("stale", 0))', "stale=0)"),
    ],
    "pandas' CSV rows taken without matching the text's lines": [
        ("bpgpu/cli/readers.py", "    return values if m == lines else None", "    return values"),
    ],
    "an aborting rank's last words not drained": [
        ("bpgpu/distributed.py", "            _drained(fd)\n", "            pass\n"),
    ],
    "a float32 checkpoint reloads its optimiser state as float64": [
        ("bpgpu/io/persistence.py", '"optimizer.")},\n                                  lambda a: net.backend.asarray(a, net.dtype))',
         '"optimizer.")},\n                                  lambda a: net.backend.asarray(a, "float64"))'),
    ],
    "a part epoch's loss weighted by the whole epoch": [
        ("bpgpu/training.py", "[net.params], plan.sizes[:done], net.backend)", "[net.params], plan.sizes, net.backend)"),
    ],
    "an atomic write without fsync": [
        ("bpgpu/io/atomic.py", "            os.fsync(f.fileno())\n", ""),
    ],
    "a stop within an epoch counted as a whole epoch": [
        ("bpgpu/training.py", "            if done < plan.steps:  # stopped within", "            if False:  # stopped within"),
    ],
    "the early-stopping state not carried into a resumed fit": [
        ("bpgpu/position.py", "self.best_loss, self.best_epoch, self.wait = start.best_loss, start.best_epoch, start.wait",
         "self.best_loss, self.best_epoch, self.wait = math.inf, None, 0"),
    ],
    # Data parallelism (tests/test_distributed*.py, run under mpiexec):
    "MPI accuracy over this rank's rows": [
        ("bpgpu/cli/ranks.py", "            return float(sums[0] / m)", "            return float(sums[0] / X.shape[0])"),
    ],
    "MPI interleaved order off by half a position": [
        ("bpgpu/distributed.py", "position = (local + 0.5) / ", "position = local / "),
    ],
    "fit(comm=) agrees on nothing": [
        ("bpgpu/agreement.py", "        differ = disagreement(", "        differ = '' and disagreement("),
    ],
    "one rank's callback error not shared": [
        ("bpgpu/agreement.py", "            comm.failure = err\n            return False", "            raise"),
    ],
}


def plant(root: Path, edits) -> bool:
    for name, old, new in edits:
        path = root / name
        if not path.is_file():
            return False
        text = path.read_text()
        if old not in text:
            return False
        path.write_text(text.replace(old, new, 1))
    return True


def main(tests: list[str]) -> int:
    results = []
    only = os.environ.get("BUG", "")  # plant only the bugs whose name contains this
    for bug, edits in BUGS.items():
        if only not in bug:
            continue
        with tempfile.TemporaryDirectory() as scratch:
            copy = Path(scratch) / "repo"
            shutil.copytree(ROOT, copy, ignore=shutil.ignore_patterns(".git", ".ci", "__pycache__", "*.egg-info",
                                                                       ".hypothesis", ".pytest_cache", "mutants"))
            if not plant(copy, edits):
                results.append((bug, "not applicable", []))
                continue
            env = {**os.environ, "PYTHONPATH": str(copy)}
            run = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                                  *tests], cwd=copy, env=env, capture_output=True, text=True)
            failed = sorted(set(re.findall(r"^FAILED (\S+?)(?: - |$)", run.stdout, re.M)))
            results.append((bug, "caught" if run.returncode else "SURVIVED", failed))
    for bug, verdict, failed in results:
        print(f"{verdict:>14}  {bug}  ({len(failed)} tests failed)")
        functions = {}
        for name in failed:  # one line per test function, its failing parametrisations counted
            base = name.split("[")[0]
            functions[base] = functions.get(base, 0) + 1
        for base, count in functions.items():
            print(f"{'':16}{base}" + (f" ×{count}" if count > 1 else ""))
    return 1 if any(v == "SURVIVED" for _, v, _ in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:] or DEFAULT_TESTS))
