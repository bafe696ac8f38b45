"""Shared test set-up. The parity helper and the backend parametrisation live in
``tests/parity.py`` (importable as ``parity``: pytest puts this folder on sys.path)."""

try:
    from hypothesis import settings
except ImportError:  # hypothesis is a test extra; the tests that need it skip without it
    pass
else:
    # No per-example deadline: tests must never pass or fail on timing. Derandomised so
    # that CI runs the same examples every time.
    settings.register_profile("bpgpu", deadline=None, derandomize=True)
    settings.load_profile("bpgpu")
