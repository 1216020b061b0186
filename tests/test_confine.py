"""The operating-system boundary itself: a process confined exactly as a program worker is
(`actors/confine.py`) tries, with ordinary Python (no sandbox in the way), everything a
program must never do. The kernel must refuse each; the results come back over a pipe."""

import json
import os
import subprocess
import sys
import tempfile

import pytest

CHILD = r"""
import ctypes, json, os, socket, sys
from actors.confine import Confinement, confine, lock_down

out = int(sys.argv[1])
empty_fd = int(sys.argv[2])
flt = confine(Confinement(memory_mb=128, cpu_s=20, empty_dir_fd=empty_fd), keep={out})
lock_down(flt)
libc = ctypes.CDLL(None, use_errno=True)
results = {"uid": os.getuid(), "cwd_entries": None}

def attempt(name, fn):
    try:
        fn()
        results[name] = "allowed"
    except MemoryError:
        results[name] = "MemoryError"
    except OSError as exc:
        results[name] = f"refused ({exc.errno})"

attempt("write_file", lambda: open("/tmp/council-confine-probe", "w"))
attempt("read_file", lambda: open("/etc/hostname").read())
attempt("list_dir", lambda: os.listdir("/"))
attempt("socket", lambda: socket.socket())
attempt("fork", lambda: os.fork() == 0 and os._exit(0))
attempt("exec", lambda: os.execv("/bin/true", ["true"]))
attempt("signal_parent", lambda: os.kill(os.getppid(), 0))
attempt("setuid_root", lambda: os.setuid(0))
attempt("allocate_1gb", lambda: bytearray(2**30))
def ptrace():
    if libc.ptrace(16, os.getppid(), 0, 0) != 0:  # PTRACE_ATTACH
        raise OSError(ctypes.get_errno(), "ptrace")
attempt("ptrace_parent", ptrace)
def mkdir():
    if libc.mkdir(b"/tmp/council-confine-dir", 0o777) != 0:
        raise OSError(ctypes.get_errno(), "mkdir")
attempt("mkdir", mkdir)
attempt("write_here", lambda: open("probe", "w"))
results["small_allocation"] = len(bytearray(2**20))
try:
    results["cwd"] = os.getcwd()
except FileNotFoundError:
    results["cwd"] = "removed"
results["fd_closed"] = True
try:
    os.fstat(empty_fd)
    results["fd_closed"] = False
except OSError:
    pass
os.write(out, json.dumps(results).encode())
"""


@pytest.fixture
def confined_results():
    read, write = os.pipe()
    # As the zygote does: the workers' directory is opened and removed before any worker starts.
    empty = tempfile.mkdtemp(prefix="council-confine-empty-")
    empty_fd = os.open(empty, os.O_RDONLY | os.O_DIRECTORY)
    os.rmdir(empty)
    proc = subprocess.run([sys.executable, "-c", CHILD, str(write), str(empty_fd)],
                          pass_fds=[write, empty_fd], cwd=os.path.dirname(os.path.dirname(__file__)),
                          timeout=60, capture_output=True, text=True)
    os.close(write)
    os.close(empty_fd)
    data = os.read(read, 65536)
    os.close(read)
    assert proc.returncode == 0, proc.stderr
    yield json.loads(data), empty


def test_the_kernel_refuses_what_a_program_must_never_do(confined_results):
    results, empty = confined_results
    for name in ("write_file", "read_file", "list_dir", "socket", "fork", "exec", "signal_parent",
                 "setuid_root", "ptrace_parent", "mkdir", "write_here"):
        assert results[name].startswith("refused"), (name, results[name])
    assert results["allocate_1gb"] == "MemoryError"  # RLIMIT_AS: 128 MB beyond the start
    assert results["small_allocation"] == 2**20  # ordinary work goes on
    assert results["cwd"] == "removed"  # a removed directory: nothing can be made in it
    assert results["fd_closed"]  # and its descriptor is not left open to the program
    assert not os.path.exists(empty)
    if os.geteuid() == 0:
        assert results["uid"] == 65534  # root gave way to nobody
    assert not os.path.exists("/tmp/council-confine-probe")
    assert not os.path.exists("/tmp/council-confine-dir")
