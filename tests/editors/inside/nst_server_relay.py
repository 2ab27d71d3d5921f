"""Inside the chroot, stands in for launch.json's `python -m nst_server serve ...`.

The chroot's Python has no torch and cannot run the host's virtual environment, so this asks
the host to start the real server (``tests/editors/server_relay.py`` watches the folder given
as the only argument) and then lives exactly as long as that server: the plugin's launcher
sees a process that runs while the server runs and exits with the server's exit status.
"""

import json
import os
import sys
import time

folder = sys.argv[1]
me = str(os.getpid())
request = {"config_dir": os.path.join(os.environ["HOME"], ".config", "nst-server")}
partial = os.path.join(folder, f"start-{me}.partial")
with open(partial, "w") as handle:
    json.dump(request, handle)
os.rename(partial, os.path.join(folder, f"start-{me}.json"))  # the host never sees half a file
print(f"relay {me}: asked the host to start nst-server", flush=True)
ended = os.path.join(folder, f"exit-{me}")
while not os.path.exists(ended):
    time.sleep(0.2)
with open(ended) as handle:
    sys.exit(int(handle.read().strip() or 1))
