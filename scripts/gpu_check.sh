#!/usr/bin/env bash
# Everything that needs a CUDA GPU, in one command, for a machine without network access
# (numpy, cupy, pytest, pytest-benchmark and torch preinstalled; no array-api-strict):
#
#   PYTHONPATH=$PWD bash scripts/gpu_check.sh [OUT_DIR]      # from the repository root
#
# 1. the GPU tests (pytest -m cupy tests) and the parity module, whole;
# 2. the pytest-benchmark suite on CuPy at full size;
# 3. bpgpu bench, W1–W3: bpgpu on CuPy against PyTorch eager on the same GPU and the
#    cuBLAS GEMM ceiling, in one process; float32 at batch sizes 256–16384 (the plot),
#    then float64 at each workload's own batch size;
# 4. bpgpu on NumPy, W3, a few steps of fit on the CPU: the GPU/CPU ratio.
# It stops at once, with cupy.show_config() in the report, if CuPy cannot run a kernel and a
# matrix product. TF32 is off throughout. The report (report.md), the JSON of each run, the plot and one
# log go to OUT_DIR, else $OUT, else ./gpu_check_out; the report is written even when a
# step fails, and the exit status is then 1. It takes about 5–8 minutes on an H100.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${1:-${OUT:-gpu_check_out}}"
mkdir -p "$out"
out=$(cd "$out" && pwd)  # absolute: the steps below change nothing, but CuPy's cache must not follow a cd
py="${PYTHON:-$(command -v python || command -v python3)}"
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
export NVIDIA_TF32_OVERRIDE=0 CUPY_TF32=0  # full float32 matrix products in cuBLAS, for CuPy and torch alike
# CuPy compiles fused kernels into a cache under $HOME by default, which may be read-only there.
export CUPY_CACHE_DIR="${CUPY_CACHE_DIR:-$out/cupy_cache}"
mkdir -p "$CUPY_CACHE_DIR"
log="$out/log.txt"
: >"$log"
failed=()

# What the steps need, checked before the first: the machine has no network, so a missing
# package cannot be installed there; say in one line what is missing and what is skipped.
# pytest runs with -o addopts= (pyproject's addopts name pytest-benchmark's options), so a
# missing plugin skips the benchmark suite instead of stopping every pytest step.
missing=$("$py" - <<'PY'
import importlib.util
need = {"numpy": "everything", "cupy": "everything", "pytest": "the tests", "pytest_benchmark": "the benchmark suite",
        "torch": "the PyTorch peer", "matplotlib": "the plot"}
def present(module):
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
print(" ".join(f"{m}({why})" for m, why in need.items() if not present(m)))
PY
)
if [ -n "$missing" ]; then
    echo "missing here: $missing" | tee -a "$log"
fi
case " $missing " in
    *" numpy("*|*" cupy("*) echo "gpu_check: cannot run without numpy and cupy" >&2; exit 1 ;;
esac
has() { case " $missing " in *" $1("*) return 1 ;; esac; return 0; }
pytest_=("$py" -m pytest -o addopts= -p no:cacheprovider -ra)

# Without a working CuPy every later step would fail or skip: stop at once, saying why.
if ! "$py" -c 'import cupy; cupy.show_config(); a = cupy.ones((2, 2), dtype=cupy.float32); (a @ a).sum().item()' \
        >"$out/cupy_config.txt" 2>&1; then
    { echo "# bpgpu GPU check"; echo; echo "CuPy cannot start here (a kernel and a matrix product were tried):"
      echo; echo '```'; cat "$out/cupy_config.txt"; echo '```'; } >"$out/report.md"
    echo "CuPy cannot start; see $out/report.md" >&2
    exit 1
fi

step() {  # step NAME COMMAND...: run it, its output into the log; remember a failure
    local name=$1
    shift
    printf '\n===== %s: %s\n' "$name" "$*" | tee -a "$log"
    local start=$SECONDS
    "$@" >>"$log" 2>&1
    local rc=$?
    printf '===== %s: exit %d after %d s\n' "$name" "$rc" "$((SECONDS - start))" | tee -a "$log"
    [ "$rc" -eq 0 ] || failed+=("$name (exit $rc)")
}

step environment sh -c "nvidia-smi || echo 'nvidia-smi: not found'; \"$py\" -c 'import bpgpu; [print(k + \":\", v) for k, v in bpgpu.available_backends().items()]'"
if has pytest; then
    step gpu-tests "${pytest_[@]}" -m cupy tests -q --continue-on-collection-errors
    if [ -f tests/test_parity.py ]; then
        step parity-tests "${pytest_[@]}" tests/test_parity.py -q
    fi
fi
if has pytest && has pytest_benchmark; then
    step benchmark-suite env BPGPU_BENCH_FULL=1 "${pytest_[@]}" benchmarks -m cupy -q \
        --benchmark-enable --benchmark-json="$out/benchmarks.json" --benchmark-columns=min,median,max,rounds
fi
plot=()
if has matplotlib; then plot=(--plot "$out/bench_gpu.png"); fi
peers=none
if has torch; then peers=torch; fi
step bench-gpu-float32 "$py" -m bpgpu.bench --workloads W1,W2,W3 --backends cupy --dtypes float32 \
    --batch-sizes 256,1024,4096,16384 --peers "$peers" --json "$out/bench_gpu.json" ${plot[@]+"${plot[@]}"}
step bench-gpu-float64 "$py" -m bpgpu.bench --workloads W1,W2,W3 --backends cupy --dtypes float64 \
    --peers "$peers" --json "$out/bench_gpu_float64.json"
step bench-cpu-w3 "$py" -m bpgpu.bench --workloads W3 --backends numpy --dtypes float32 --peers none \
    --measures fit --repeats 3 --min-time 0 --json "$out/bench_cpu_w3.json"

# The report: each run's table, then every target judged over all runs together.
FAILED="${failed[*]-}" "$py" - "$out" >>"$log" 2>&1 <<'EOF'
import json, os, pathlib, subprocess, sys
from bpgpu import bench

out = pathlib.Path(sys.argv[1])
runs = {name: json.loads((out / name).read_text())
        for name in ("bench_gpu.json", "bench_gpu_float64.json", "bench_cpu_w3.json") if (out / name).exists()}
try:
    gpu = subprocess.run(["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
                         capture_output=True, text=True, check=True).stdout.strip()
except (OSError, subprocess.CalledProcessError) as err:
    gpu = f"no GPU found ({err})"
log = (out / "log.txt").read_text()
lines = ["# bpgpu GPU check", "", f"- GPU: {gpu}", f"- failed steps: {os.environ['FAILED'] or 'none'}", "",
         "## Tests", ""]
for name in ("gpu-tests", "parity-tests", "benchmark-suite"):
    section = log.split(f"===== {name}:")
    if len(section) > 1:  # pytest's summary line is the last line of the step's output
        body = [l for l in section[1].splitlines()[1:] if l.strip() and not l.startswith("=====")]
        lines.append(f"- {name}: {body[-1] if body else 'no output'}")
for name, report in runs.items():
    lines += ["", f"## {name}", "", bench.markdown({**report, "targets": []})]
results = [r for report in runs.values() for r in report["results"]]
targets = bench.check_targets(results)
lines += ["", "## Targets (issues 3 and 4)", ""]
if targets:
    lines.append(bench.targets_markdown(targets))
else:
    lines.append("No target could be judged from these results.")
(out / "report.md").write_text("\n".join(lines) + "\n")
print(f"report: {out / 'report.md'}")
EOF
[ $? -eq 0 ] || failed+=("report")
echo "report: $out/report.md; log: $log"
if [ ${#failed[@]} -gt 0 ]; then
    echo "failed: ${failed[*]}" >&2
    exit 1
fi
