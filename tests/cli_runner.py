"""`council …` run as a user runs it: a subprocess, its output captured."""

import subprocess
import sys


def council(*args, timeout=300, env=None, local=True):
    # `council run` answers on a server it finds up (`council up`'s, or one at the default
    # address); most tests here are about local runs, so they say --local.
    if local and args and args[0] == "run" and "--server" not in args:
        args = (*args, "--local")
    return subprocess.run(
        [sys.executable, "-m", "council_cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
    )
