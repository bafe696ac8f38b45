#!/usr/bin/env bash
# Mutation testing with mutmut 3: plant small bugs (mutants) in bpgpu's modules, one at a
# time, and count how many the tests catch. Slow, so not in CI: run it before a release.
# docs/testing.md has the last score, the equivalent mutants and why mutmut.
#
#   scripts/mutation_check.sh                                # the full set (hours on 2 cores)
#   scripts/mutation_check.sh bpgpu/losses.py bpgpu/activations.py bpgpu/gradcheck.py
#   TESTS="tests/test_reference.py tests/test_gradients.py" scripts/mutation_check.sh bpgpu/losses.py
#   K="not real_process" TESTS=tests/test_bad_input.py scripts/mutation_check.sh bpgpu/gradcheck.py
#
# K is a pytest -k expression. Leave out tests that run bpgpu in a subprocess: the mutated
# package there looks for mutmut's configuration in the subprocess's working directory and
# fails every such test, mutant or not (mutmut then reports "failed to collect stats").
#
# It works in a scratch copy (never in your tree), with mutmut installed into its own
# virtual environment on top of the current Python's packages. Set KEEP=1 to keep the copy
# (then `cd` there and run `mutmut browse` or `mutmut show NAME` to read the survivors).
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PYTHON="${PYTHON:-python3}"
MUTMUT_VERSION="${MUTMUT_VERSION:-3.8.1}"
DEFAULT_MODULES="bpgpu/network.py bpgpu/losses.py bpgpu/activations.py bpgpu/optimizers.py bpgpu/training.py bpgpu/gradcheck.py bpgpu/cli.py bpgpu/cli/*.py"
MODULES="${*:-$DEFAULT_MODULES}"
TESTS="${TESTS:-tests}"

WORK="$(mktemp -d "${TMPDIR:-/tmp}/bpgpu-mutation.XXXXXX")"
[ "${KEEP:-0}" = 1 ] || trap 'rm -rf "$WORK"' EXIT

# mutmut beside the project's test dependencies: a venv that also sees the current packages.
"$PYTHON" -m venv "$WORK/venv"
echo "$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" \
    > "$("$WORK/venv/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')/outer.pth"
"$WORK/venv/bin/python" -m pip install --quiet "mutmut==$MUTMUT_VERSION"

mkdir "$WORK/repo"
(cd "$ROOT" && git ls-files -co --exclude-standard -z | xargs -0 cp --parents -t "$WORK/repo")
cd "$WORK/repo"

# Only modules that exist here (the CLI is one file or a package, depending on the version).
only=()
for pattern in $MODULES; do
    for file in $pattern; do
        [ -f "$file" ] && only+=("\"$file\"")
    done
done
[ ${#only[@]} -gt 0 ] || { echo "mutation_check: none of $MODULES exists" >&2; exit 2; }
tests=()
for t in $TESTS; do tests+=("\"$t\""); done
[ -z "${K:-}" ] || tests+=("\"-k\"" "\"$K\"")
{
    echo
    echo "[tool.mutmut]"
    echo "source_paths = [\"bpgpu\"]"
    echo "only_mutate = [$(IFS=,; echo "${only[*]}")]"
    echo "pytest_add_cli_args_test_selection = [$(IFS=,; echo "${tests[*]}")]"
    # Workers forked from a process that has imported torch (the reference tests do) can
    # deadlock on a lock some thread held at the fork: fork them from a clean server instead.
    echo "process_isolation = \"forkserver\""
    # -p no:cacheprovider: no .pytest_cache in the copy; -x: the first failure kills a mutant.
    echo "pytest_add_cli_args = [\"-p\", \"no:cacheprovider\", \"-x\", \"-q\"]"
} >> pyproject.toml

echo "mutating: ${only[*]}"
echo "tests:    ${tests[*]}"
start=$(date +%s)
"$WORK/venv/bin/mutmut" run --max-children "${JOBS:-2}" || true
"$WORK/venv/bin/mutmut" results --all true > "$WORK/results.txt" 2>&1 || "$WORK/venv/bin/mutmut" results > "$WORK/results.txt" 2>&1 || true
echo
echo "survivors and other non-killed mutants (mutmut results):"
grep -v ": killed$" "$WORK/results.txt" || true
killed=$(grep -c ": killed$" "$WORK/results.txt" || true)
total=$(grep -c ": " "$WORK/results.txt" || true)
echo
echo "score: $killed of $total mutants killed in $(( $(date +%s) - start )) s"
[ "${KEEP:-0}" = 1 ] && echo "kept: $WORK/repo (mutmut show NAME there)"
exit 0
