"""Cancel the server's job when GIMP kills the plug-in while it waits for the result.

GIMP stops a running plug-in (its progress bar's Cancel button) by sending a quit message and
killing the process 10 ms later: no code of ours runs, so the server would go on computing a result
nobody fetches. So a small process in a session of its own watches a pipe that only the plug-in
writes to. The plug-in writes ``done`` when it stops waiting by itself; end-of-file without it means
the plug-in was killed, and the watchdog cancels the job.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from .shared import nst_client

DONE = b"done\n"


@contextlib.contextmanager
def cancel_if_killed(client: nst_client.Client, job_id: str) -> Iterator[None]:
    """While inside, the job is cancelled on the server should this process be killed."""
    try:
        watchdog = _start(client, job_id)
    except OSError:
        watchdog = None  # the run still works; only a kill would leave the job running
    try:
        yield
    finally:
        if watchdog is not None and watchdog.stdin is not None:
            with contextlib.suppress(OSError):
                watchdog.stdin.write(DONE)
                watchdog.stdin.close()


def _start(client: nst_client.Client, job_id: str) -> subprocess.Popen:
    # Both the package and the shared client must be importable by the fresh interpreter.
    paths = [str(Path(nst_client.__file__).parent), str(Path(__file__).resolve().parents[1])]
    env = dict(os.environ)
    env.update(
        # Through the environment, not argv: other users can read a process's arguments.
        NST_SERVER_URL=client.url,
        NST_TOKEN=client.token or "",
        PYTHONPATH=os.pathsep.join([*paths, env.get("PYTHONPATH", "")]).rstrip(os.pathsep),
    )
    return subprocess.Popen(
        [sys.executable, "-m", "nst_gimp.watchdog", job_id],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
        start_new_session=True,  # out of the process group GIMP may kill with the plug-in
        creationflags=getattr(subprocess, "CREATE_NO_WINDOW", 0),
    )


def main(job_id: str) -> None:
    """Wait for the plug-in to finish or die; in the second case cancel ``job_id``."""
    if sys.stdin.buffer.read() == DONE:
        return
    with contextlib.suppress(nst_client.NSTClientError):
        nst_client.Client.discover(timeout=10).cancel(job_id)


if __name__ == "__main__":
    main(sys.argv[1])
