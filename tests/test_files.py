"""Atomic writes (``bpgpu.io.atomic``) and the writers built on it.

The promises under test: a write that fails — a full disk, ``ulimit -f``, an error in
the caller's own writer, a SIGKILL — leaves the previous file whole and says which
file in one line; a symlink, FIFO, device, socket or folder at the path is refused
before anything is written, and left as it was; the temporaries of a killed writer
are removed by the next writer of the same file.
"""

from __future__ import annotations

import errno
import os
import shutil
import socket
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bpgpu
from bpgpu.io import persistence
from bpgpu.io.atomic import atomic_write, atomic_write_bytes, atomic_write_text, check_target
from reliability import tally

RELIABILITY = "files"

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(os.name != "posix", reason="symlinks, FIFOs and rlimits are POSIX")

WRITERS = {
    "atomic_write_bytes": lambda path: atomic_write_bytes(path, b"new\n" * 1000),
    "atomic_write_text": lambda path: atomic_write_text(path, "nouveau\n" * 1000),
    "atomic_write with np.save": lambda path: atomic_write(path, lambda f: np.save(f, np.ones(500))),
    "persistence.save": lambda path: persistence.save(bpgpu.Network([3, 2, 1]), path),
}


def temporaries(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def snapshot(path: Path):
    """What is at ``path``, without following a link or opening a FIFO: (kind, content)."""
    st = os.lstat(path)
    if stat.S_ISLNK(st.st_mode):
        return "link", os.readlink(path)
    if stat.S_ISREG(st.st_mode):
        return "file", path.read_bytes()
    return stat.S_IFMT(st.st_mode), None


def make_symlink_to_file(tmp: Path) -> Path:
    (tmp / "precious.txt").write_text("someone else's file\n")
    os.symlink(tmp / "precious.txt", tmp / "out")
    return tmp / "out"


def make_dangling_symlink(tmp: Path) -> Path:
    os.symlink(tmp / "nowhere", tmp / "out")
    return tmp / "out"


def make_symlink_to_fifo(tmp: Path) -> Path:
    os.mkfifo(tmp / "pipe")
    os.symlink(tmp / "pipe", tmp / "out")
    return tmp / "out"


def make_fifo(tmp: Path) -> Path:
    os.mkfifo(tmp / "out")
    return tmp / "out"


def make_folder(tmp: Path) -> Path:
    (tmp / "out").mkdir()
    (tmp / "out" / "inside").write_text("kept\n")
    return tmp / "out"


def make_socket(tmp: Path) -> Path:
    s = socket.socket(socket.AF_UNIX)
    s.bind(str(tmp / "out"))
    s.close()  # the socket file stays
    return tmp / "out"


def make_null_device(tmp: Path) -> Path:
    """A character device: as root, a null device made in the test's folder (so a broken
    refusal could not replace the real /dev/null); otherwise /dev/null itself, which no
    other user can replace."""
    if os.geteuid() != 0:
        return Path(os.devnull)
    try:
        os.mknod(tmp / "out", stat.S_IFCHR | 0o666, os.makedev(1, 3))
    except OSError as err:  # a container without CAP_MKNOD
        pytest.skip(f"cannot make a device node here: {err}")
    return tmp / "out"


TARGETS = {
    "a symlink to another file": (make_symlink_to_file, "symlink"),
    "a dangling symlink": (make_dangling_symlink, "symlink"),
    "a symlink to a FIFO": (make_symlink_to_fifo, "symlink"),
    "a FIFO": (make_fifo, "FIFO"),
    "a folder": (make_folder, "folder"),
    "a socket": (make_socket, "socket"),
    "a null device": (make_null_device, "character device"),
}


@pytest.mark.parametrize("writer", WRITERS)
@pytest.mark.parametrize("target", TARGETS)
def test_hostile_targets_are_refused_and_left_alone(tmp_path, no_hang, target, writer):
    """A write to a symlink, FIFO, device, socket or folder is refused in one line naming it, and changes nothing"""
    make, kind = TARGETS[target]
    path = make(tmp_path)
    before = {p: snapshot(p) for p in [path, *tmp_path.rglob("*")]}
    with pytest.raises(OSError) as raised:
        WRITERS[writer](path)
    tally()
    message = str(raised.value)
    assert str(path) in message and kind in message and "refusing" in message and "\n" not in message, message
    assert {p: snapshot(p) for p in before} == before
    assert temporaries(tmp_path) == []


def test_check_target_refuses_before_any_work(tmp_path, no_hang):
    """check_target refuses a FIFO, a missing folder and a symlink, and passes a new or regular file"""
    assert check_target(tmp_path / "new.json") == tmp_path / "new.json"
    (tmp_path / "old.json").write_text("{}")
    check_target(tmp_path / "old.json")
    with pytest.raises(FileExistsError, match="out: refusing to write: it is a FIFO"):
        check_target(make_fifo(tmp_path))
    with pytest.raises(FileNotFoundError, match="folder .*missing does not exist"):
        check_target(tmp_path / "missing" / "x.json")
    os.symlink(tmp_path / "old.json", tmp_path / "link.json")
    with pytest.raises(FileExistsError, match="link.json: refusing to write: it is a symlink"):
        check_target(tmp_path / "link.json")


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into any folder")
def test_an_unwritable_folder_is_refused_before_any_work(tmp_path):
    """check_target refuses a folder it cannot write into"""
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    with pytest.raises(PermissionError, match="folder .*locked is not writable"):
        check_target(locked / "x.json")


def test_a_full_disk_leaves_the_previous_file(tmp_path):
    """ENOSPC halfway through a write: the previous file is intact, the error names the file and keeps errno"""
    path = tmp_path / "history.json"
    atomic_write_text(path, "the previous run\n")

    def half_then_full(f):
        f.write(b"x" * 100_000)
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    with pytest.raises(OSError) as raised:
        atomic_write(path, half_then_full)
    assert raised.value.errno == errno.ENOSPC
    assert str(path) in str(raised.value) and "No space left" in str(raised.value)
    assert path.read_text() == "the previous run\n"
    assert temporaries(tmp_path) == []


def test_the_writers_own_error_propagates_unchanged(tmp_path):
    """An exception raised by the caller's writer comes out as it was, the previous file intact"""
    path = tmp_path / "loss.png"
    atomic_write_bytes(path, b"old")

    def broken(f):
        f.write(b"new")
        raise RuntimeError("matplotlib fell over")

    with pytest.raises(RuntimeError, match="matplotlib fell over"):
        atomic_write(path, broken)
    assert path.read_bytes() == b"old" and temporaries(tmp_path) == []


# argv: kind ("text" or "model"), path. Rewrites path with something larger than the
# 16 KiB `ulimit -f` lets the process write; prints the error's message and exits 1.
OVER_THE_LIMIT = r"""
import sys
import bpgpu
from bpgpu.io.atomic import atomic_write_text
from bpgpu.io.persistence import save

kind, path = sys.argv[1], sys.argv[2]
try:
    if kind == "text":
        atomic_write_text(path, "x" * 100_000)
    else:
        save(bpgpu.Network([100, 100, 1]), path)
except OSError as err:
    print(err, file=sys.stderr)
    sys.exit(1)
"""


@pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash for ulimit -f")
@pytest.mark.parametrize("kind", ["text", "model"])
def test_ulimit_f_leaves_the_previous_file(tmp_path, kind):
    """A write past `ulimit -f` (EFBIG; Python ignores SIGXFSZ) fails in one line naming the file, the old file whole"""
    path = tmp_path / ("out.txt" if kind == "text" else "model.npz")
    if kind == "text":
        atomic_write_text(path, "small\n")
    else:
        persistence.save(bpgpu.Network([2, 1]), path)
    before = path.read_bytes()
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(["bash", "-c", 'ulimit -f 16 && exec "$0" -c "$1" "$2" "$3"',
                           sys.executable, OVER_THE_LIMIT, kind, str(path)],
                          env=env, capture_output=True, text=True, timeout=60)
    tally()
    assert done.returncode == 1, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(path) in lines[0] and "File too large" in lines[0], done.stderr
    assert path.read_bytes() == before
    assert temporaries(tmp_path) == []


# Writes the file at argv[1] in two halves, announcing "stalled" between them, where it is killed.
STALLED_WRITER = r"""
import sys, time
from bpgpu.io.atomic import atomic_write

def write(f):
    f.write(b"half of a new file")
    f.flush()
    print("stalled", flush=True)
    time.sleep(60)

atomic_write(sys.argv[1], write)
"""


def test_a_killed_writers_temporary_is_removed_by_the_next_writer(tmp_path):
    """SIGKILL mid-write leaves a temporary and the old file; the next write removes the temporary"""
    path = tmp_path / "bench.json"
    atomic_write_text(path, "old\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    writer = subprocess.Popen([sys.executable, "-c", STALLED_WRITER, str(path)], env=env,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert writer.stdout.readline().strip() == "stalled"
    finally:
        writer.kill()
        writer.wait(timeout=10)
    tally()
    assert path.read_text() == "old\n" and len(temporaries(tmp_path)) == 1
    atomic_write_text(path, "new\n")
    assert path.read_text() == "new\n" and temporaries(tmp_path) == []


def test_a_live_writers_temporary_is_kept(tmp_path):
    """Temporaries of a process still running are another writer's work in progress: kept; a dead one's removed"""
    path = tmp_path / "model.npz"
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    alive = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        stale = f".model.npz.bpgpu-{gone.pid}-0badf00d.tmp"
        working = f".model.npz.bpgpu-{alive.pid}-0cafe0ff.tmp"
        other = f".history.json.bpgpu-{gone.pid}-00000000.tmp"  # another file's: not ours to judge
        for name in (stale, working, other):
            (tmp_path / name).write_bytes(b"partial")
        persistence.save(bpgpu.Network([3, 2, 1]), path)
        assert temporaries(tmp_path) == sorted([working, other])
    finally:
        alive.kill()
        alive.wait()


def test_a_new_file_gets_the_umask_and_a_replaced_one_keeps_its_mode(tmp_path):
    """A new file has mode 0o666 less the umask; a rewritten file keeps the mode it had"""
    umask = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "new.txt", "x")
    finally:
        os.umask(umask)
    assert stat.S_IMODE(os.stat(tmp_path / "new.txt").st_mode) == 0o640
    (tmp_path / "kept.txt").write_text("x")
    os.chmod(tmp_path / "kept.txt", 0o604)
    atomic_write_text(tmp_path / "kept.txt", "y")
    assert stat.S_IMODE(os.stat(tmp_path / "kept.txt").st_mode) == 0o604


def test_a_name_near_the_length_limit_is_written(tmp_path):
    """A 250-character file name: its temporary's name is cut to stay within 255 bytes"""
    path = tmp_path / ("m" * 246 + ".npz")
    persistence.save(bpgpu.Network([3, 2, 1]), path)
    persistence.save(bpgpu.Network([3, 2, 1]), path)
    assert os.listdir(tmp_path) == [path.name]


def test_a_symlinked_folder_is_fine(tmp_path):
    """Only the file itself must not be a link: a path through a linked folder is written"""
    (tmp_path / "real").mkdir()
    os.symlink(tmp_path / "real", tmp_path / "linked")
    atomic_write_text(tmp_path / "linked" / "history.json", "{}\n")
    assert (tmp_path / "real" / "history.json").read_text() == "{}\n"


def test_a_long_non_ascii_name_keeps_its_temporary_within_255_bytes(tmp_path):
    """80 three-byte characters (240 bytes) make a valid name; its temporary's name is cut
    in bytes, not characters, so the write does not fail with 'File name too long'"""
    from bpgpu.io.atomic import atomic_write_text

    path = tmp_path / ("数" * 80)
    atomic_write_text(path, "kept")
    assert path.read_text() == "kept"
