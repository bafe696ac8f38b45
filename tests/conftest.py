"""Shared test set-up. The parity helper and the backend parametrisation live in
``tests/parity.py`` (importable as ``parity``: pytest puts this folder on sys.path)."""

import signal

import pytest

try:
    from hypothesis import settings
except ImportError:  # hypothesis is a test extra; the tests that need it skip without it
    pass
else:
    # No per-example deadline: tests must never pass or fail on timing. Derandomised so
    # that CI runs the same examples every time.
    settings.register_profile("bpgpu", deadline=None, derandomize=True)
    settings.load_profile("bpgpu")


@pytest.fixture
def no_hang():
    """Fail in 10 s, rather than hang, if the test blocks (opening a FIFO with no other
    end does). SIGALRM interrupts the blocked system call and the handler raises."""
    def blocked(signum, frame):
        raise TimeoutError("blocked for 10 s (opened a FIFO or a device?)")

    previous = signal.signal(signal.SIGALRM, blocked)
    signal.alarm(10)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


@pytest.fixture
def cli(tmp_path, monkeypatch, capsys):
    """``cli(*args) -> (status, stdout, stderr)``: ``bpgpu args`` run in this process, in
    tmp_path (a test module may define its own, with data files made first)."""
    from bpgpu.cli import main

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("BPGPU_DEBUG", raising=False)

    def run(*args):
        capsys.readouterr()
        status = main([str(a) for a in args])
        return (status, *capsys.readouterr())
    return run
