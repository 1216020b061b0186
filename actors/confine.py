"""Operating-system confinement of a program worker: what the kernel, not Python, enforces.

`confine()` runs in a freshly forked worker (see `actors/zygote.py`) before any program code
and cannot be undone by it:

- **no way out through files or the network**: every descriptor but the worker's own
  channels is closed, stdin/stdout/stderr point at /dev/null, the working directory is an
  empty, read-only one; the seccomp filter then refuses `open`/`openat`/`creat` (any file,
  for reading too), `socket`/`connect`/`bind`, `execve`, `fork`/`clone`, `ptrace`, `kill`,
  `mount`, `setuid` and every other call not on its allowlist (they fail with EPERM);
- **no one else's identity**: run as root (a container's default), the worker becomes
  `nobody` with no supplementary groups; either way it is undumpable (no ptrace, no
  /proc/PID/mem for its siblings) and has `no_new_privs`;
- **bounded**: RLIMIT_AS (its address space at start + the request's memory budget),
  RLIMIT_CPU (CPU seconds for the request's life on this replica), RLIMIT_FSIZE 0,
  RLIMIT_NPROC 0, RLIMIT_NOFILE, RLIMIT_CORE 0, and a lower scheduling priority so a busy
  program yields the cores to the engine.

Why seccomp + rlimits and not bubblewrap/firejail: those start a process per sandbox (~5-20 ms
and an exec of a fresh interpreter, ~1 s to import numpy again), which defeats the warm zygote,
and need user namespaces that container runtimes often disable; a filter loaded into a forked
child costs ~1 ms and works unprivileged. libseccomp (via `pyseccomp`) compiles the allowlist.
"""

from __future__ import annotations

import ctypes
import errno
import os
import resource
from dataclasses import dataclass

NOBODY = 65534
PR_SET_PDEATHSIG = 1
PR_SET_DUMPABLE = 4
CPU_HARD_GRACE_S = 2  # RLIMIT_CPU: SIGXCPU at the budget, SIGKILL this much later

# What a single-threaded asyncio interpreter needs once its sockets, shared memory and event
# loop exist: memory, its own descriptors, time, signals, exit. Nothing that names a path,
# makes a descriptor or a process, or reaches another process.
ALLOWED_SYSCALLS = (
    "read", "write", "readv", "writev", "pread64", "pwrite64", "close", "fstat", "newfstatat",
    "statx", "lseek", "fcntl", "ioctl", "dup",
    "mmap", "munmap", "mprotect", "mremap", "brk", "madvise",
    "recvfrom", "recvmsg", "sendto", "sendmsg", "shutdown", "getsockname", "getpeername",
    "getsockopt",
    "poll", "ppoll", "select", "pselect6", "epoll_wait", "epoll_pwait", "epoll_pwait2",
    "epoll_ctl",
    "futex", "sched_yield", "sched_getaffinity", "getrandom",
    "clock_gettime", "clock_getres", "clock_nanosleep", "nanosleep", "gettimeofday", "time",
    "rt_sigaction", "rt_sigprocmask", "rt_sigreturn", "sigaltstack",
    "getpid", "gettid", "getppid", "getuid", "geteuid", "getgid", "getegid", "getrusage",
    "getcwd", "uname", "sysinfo", "prlimit64", "getrlimit",
    "exit", "exit_group",
)


class ConfinementUnavailable(RuntimeError):
    """This host cannot confine program workers (no seccomp, say): programs do not run."""


@dataclass(frozen=True)
class Confinement:
    memory_mb: int
    cpu_s: float
    # A descriptor of an empty directory that is already removed: the worker's working
    # directory, in which nothing can be created (the kernel refuses entries in a removed
    # directory) and which leaves nothing on disk when the zygote is killed.
    empty_dir_fd: int
    nice: int = 5
    max_open_files: int = 64


def _libc():
    return ctypes.CDLL(None, use_errno=True)


def die_with_parent() -> None:
    """SIGKILL this process when the one that forked it exits (the zygote, for a worker)."""
    _libc().prctl(PR_SET_PDEATHSIG, 9, 0, 0, 0)


def _address_space() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")


def _descriptors_to_null(keep: set[int]) -> None:
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        if fd not in keep:
            os.dup2(null, fd)
    os.close(null)
    for fd in sorted(int(n) for n in os.listdir("/proc/self/fd")):
        if fd > 2 and fd not in keep:
            try:
                os.close(fd)
            except OSError:
                pass


def seccomp_filter():
    """The compiled allowlist (libseccomp); everything else fails with EPERM."""
    try:
        import pyseccomp as seccomp
    except (ImportError, OSError) as exc:  # the package, or libseccomp.so.2, is missing
        raise ConfinementUnavailable(f"seccomp is not available on this host ({exc})") from None
    flt = seccomp.SyscallFilter(defaction=seccomp.ERRNO(errno.EPERM))
    for name in ALLOWED_SYSCALLS:
        try:
            flt.add_rule(seccomp.ALLOW, name)
        except (ValueError, RuntimeError, OSError):
            pass  # a call this architecture does not have (e.g. `time` on arm64)
    return flt


def confine(limits: Confinement, keep: set[int]):
    """Confine this process for good; run only in a freshly forked worker. Returns the seccomp
    filter, which `lock_down` loads once the event loop exists (creating one needs calls the
    filter forbids). Raises ConfinementUnavailable where the host cannot do it."""
    parent = os.getppid()
    flt = seccomp_filter()
    os.fchdir(limits.empty_dir_fd)
    _descriptors_to_null(keep)
    start = _address_space()
    os.nice(limits.nice)
    if os.geteuid() == 0:
        os.setgroups([])
        os.setgid(NOBODY)
        os.setuid(NOBODY)
    # After the uid change, which clears a parent-death signal set before it.
    die_with_parent()
    if os.getppid() != parent:  # the zygote died before the signal was armed
        os._exit(0)
    libc = _libc()
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    memory = start + limits.memory_mb * 2**20
    cpu = max(1, int(limits.cpu_s))
    for which, value in (
        (resource.RLIMIT_AS, memory), (resource.RLIMIT_CPU, (cpu, cpu + CPU_HARD_GRACE_S)),
        (resource.RLIMIT_FSIZE, 0), (resource.RLIMIT_NPROC, 0), (resource.RLIMIT_CORE, 0),
        (resource.RLIMIT_NOFILE, limits.max_open_files),
    ):
        soft, hard = value if isinstance(value, tuple) else (value, value)
        resource.setrlimit(which, (soft, hard))
    return flt


def lock_down(flt) -> None:
    """Load the seccomp filter: from here on only the allowlisted calls succeed."""
    try:
        flt.load()
    except (OSError, RuntimeError, ValueError) as exc:
        raise ConfinementUnavailable(f"the kernel refused the seccomp filter ({exc})") from None
