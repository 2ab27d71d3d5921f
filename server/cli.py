"""``nst-server``: run the server, install the editor plugins, print the token.

    nst-server                               serve on http://127.0.0.1:8765
    nst-server --device cuda:0 --device cuda:1   one worker per GPU
    nst-server install-plugin krita|gimp     put a plugin in the editor's folder
    nst-server package-plugin krita -o nst-krita.zip
    nst-server token                         the token scripts send as a Bearer token
    nst-server doctor                        check what decides whether it will work
"""

from __future__ import annotations

import argparse
import functools
import io
import logging
import logging.handlers
import math
import os
import signal
import sys
import threading
from pathlib import Path
from typing import TextIO

from nst_engine import NSTError, memory

from . import __version__, doctor, launch, paths, plugin_install
from .config import DEFAULT_HOST, DEFAULT_PORT, Limits, ServerConfig
from .datalock import DataFolderBusy
from .idle import stop_when_idle
from .security import LOOPBACK_NAMES, load_or_create_token, write_connection

log = logging.getLogger("nst-server")
COMMANDS = ("serve", "install-plugin", "package-plugin", "token", "doctor")
#: The log file is rotated at this size (one older file is kept), so a server that runs for
#: months does not fill the disk.
LOG_FILE_BYTES = 2 * 2**20


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or (argv[0] not in COMMANDS and argv[0] not in ("-h", "--help", "--version")):
        argv.insert(0, "serve")  # `nst-server --port 9000` means `nst-server serve --port 9000`
    args = _parser().parse_args(argv)
    try:
        return args.run(args)
    except (NSTError, OSError, ValueError, plugin_install.PluginInstallError,
            DataFolderBusy) as error:
        print(f"nst-server: {error}", file=sys.stderr)
        return 1


def _serve(args: argparse.Namespace) -> int:
    _log_to(args.log_file)
    try:
        return _run_server(args)
    except (NSTError, OSError, ValueError, DataFolderBusy) as error:
        # Logged, not only printed: for a server an editor started, the log file is the only
        # place where the user (and the plugin's error message) can see why it stopped.
        log.error("%s", error)
        return 1
    except Exception:
        log.exception("the server stopped on an unexpected error")  # a bug: the traceback
        return 1


def _log_to(log_file: Path | None) -> None:
    """Log to stderr, and also to ``log_file`` (appended, private) when one is given."""
    handlers: list[logging.Handler] = []
    if log_file is not None:
        # Not private_dir: the folder may be the user's own (or /tmp), whose mode is theirs.
        log_file.parent.mkdir(parents=True, exist_ok=True)
        os.close(os.open(log_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600))
        paths.private_file(log_file)
        handlers.append(logging.handlers.RotatingFileHandler(
            log_file, maxBytes=LOG_FILE_BYTES, backupCount=1, encoding="utf-8"))
    # No stderr at all under pythonw.exe, or when a launcher closed it; and none wanted when
    # it is the log file already (the plugins' launcher sends it there, for the tracebacks
    # that come before logging starts), or every line would be written twice.
    if sys.stderr and not _is_file(sys.stderr, log_file):
        handlers.append(logging.StreamHandler())
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s",
                        handlers=handlers, force=True)


def _is_file(stream: TextIO, path: Path | None) -> bool:
    """Whether ``stream`` writes to the file at ``path``."""
    if path is None:
        return False
    try:
        return os.path.samestat(os.fstat(stream.fileno()), os.stat(path))
    except (OSError, ValueError, io.UnsupportedOperation):  # no file behind it, or closed
        return False


def _run_server(args: argparse.Namespace) -> int:
    import waitress

    from .app import create_app

    if args.host not in LOOPBACK_NAMES:
        log.warning("listening on %s: other machines on the network can reach this server "
                    "(they still need the token)", args.host)
    config_dir = args.config_dir or paths.config_dir()
    config = ServerConfig(
        data_dir=args.data_dir or paths.data_dir(),
        token=load_or_create_token(config_dir),
        host=args.host, devices=tuple(args.device or ["auto"]),
        weights=args.weights, allow_hosts=tuple(args.allow_host),
        memory_budget=args.memory_budget, min_free_disk=args.min_free_disk,
        limits=Limits(max_queue=args.max_queue, max_pixels=args.max_pixels,
                      max_iterations=args.max_iterations),
    )
    # Workers start only once the port is ours: a server that cannot listen must not have
    # taken any job.
    app = create_app(config, start=False)
    service = app.extensions["nst"]
    # Waitress reads a whole body before the app sees the request (and its token): its own
    # limit must be the upload limit, or anyone could make it buffer a gigabyte. It refuses
    # a body of exactly its limit, Flask one over it: +1 makes them agree.
    try:
        server = waitress.create_server(
            app, host=args.host, port=args.port, threads=args.threads, ident="nst-server",
            max_request_body_size=config.limits.max_upload_bytes + 1)
    except OSError as error:
        raise OSError(f"cannot listen on {_bracketed(args.host)}:{args.port} "
                      f"({error.strerror or error}): another program uses that port; choose "
                      f"another with --port") from error
    shown_host = "127.0.0.1" if args.host in ("0.0.0.0", "localhost") else args.host
    url = f"http://{_bracketed(shown_host)}:{server.effective_port}"
    service.data_lock.announce(url)
    service.start()
    connection = write_connection(config_dir, url, config.token)
    health = service.health()
    print(f"nst-server listening on {url} (device {health['device']}, "
          f"weights {health['weights']})", flush=True)
    log.info("listening on %s; plugins find this server through %s", url, connection)
    signal.signal(signal.SIGTERM, _interrupt)
    halt = threading.Event()
    if args.idle_timeout:
        # The same clean stop as `kill`: the SIGTERM handler above, run by the main thread.
        # (Not SIGINT: a program started in the background by a shell ignores it.)
        stop_when_idle(service.activity, args.idle_timeout * 60,
                       functools.partial(signal.raise_signal, signal.SIGTERM), halt)
    try:
        server.run()  # returns on SIGTERM, Ctrl+C or the idle time: waitress catches them
    except KeyboardInterrupt:
        pass
    finally:
        halt.set()
        server.close()
        service.stop()
    log.info("stopped; unfinished jobs run again at the next start")
    return 0


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt



def _bytes(text: str) -> int:
    try:
        return memory.parse_bytes(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None

def _bracketed(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def _install(args: argparse.Namespace) -> int:
    placed = plugin_install.install_plugin(args.editor, args.dest,
                                           gimp_version=args.gimp_version)
    print(f"Installed the {args.editor} plugin ({placed.reason}) in:")
    for folder in placed.folders:
        print(f"  {folder}")
    started = launch.launch_for(paths.config_dir(), paths.data_dir(), args.idle_timeout)
    written = launch.write_launch(paths.config_dir(), started)
    stops = (f"stops after {args.idle_timeout:g} minutes without use" if args.idle_timeout
             else "runs until you stop it")
    print(f"The plugin starts the server when it is not running ({written}); that server "
          f"{stops} and logs to {started.log}.")
    if args.editor == "krita":
        print("Restart Krita, then use Filter > Neural Style Transfer.")
    else:
        print("Restart GIMP, then use Filters > Artistic > Neural Style Transfer.")
    return 0


def _package(args: argparse.Namespace) -> int:
    print(f"Wrote {plugin_install.package_plugin(args.editor, args.output)}")
    return 0


def _doctor(args: argparse.Namespace) -> int:
    findings = doctor.examine(port=args.port)
    print(doctor.report(findings))
    return 1 if any(finding.problem for finding in findings) else 0


def _minutes(text: str) -> float:
    try:
        minutes = float(text)
    except ValueError:
        minutes = math.nan
    if not (math.isfinite(minutes) and minutes >= 0):
        raise argparse.ArgumentTypeError(f"'{text}' is not a number of minutes (0: never)")
    return minutes


def _token(args: argparse.Namespace) -> int:
    print(load_or_create_token(args.config_dir or paths.config_dir()))
    return 0


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="nst-server", description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--version", action="version", version=f"nst-server {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the server (the default command)")
    serve.set_defaults(run=_serve)
    serve.add_argument("--host", default=DEFAULT_HOST,
                       help="address to listen on; anything but loopback exposes the server to "
                            "the network (default: %(default)s)")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT,
                       help="port (0: any free one) (default: %(default)s)")
    serve.add_argument("--device", action="append",
                       help="auto, cpu, cuda, cuda:N or mps; repeat for one worker per device "
                            "(default: auto)")
    serve.add_argument("--weights", default="default",
                       help="default (offline VGG-19), torchvision, or a weights file")
    serve.add_argument("--data-dir", type=Path, help="job database, uploads and results "
                       f"(default: {paths.data_dir()})")
    serve.add_argument("--config-dir", type=Path, help="token and connection.json "
                       f"(default: {paths.config_dir()})")
    serve.add_argument("--allow-host", action="append", default=[], metavar="NAME",
                       help="another name clients may use in the Host header (a proxy, a LAN "
                            "name)")
    defaults = Limits()
    serve.add_argument("--max-queue", type=int, default=defaults.max_queue,
                       help="jobs that may wait; more are answered 429 (default: %(default)s)")
    serve.add_argument("--max-pixels", type=int, default=defaults.max_pixels,
                       help="largest image accepted (default: %(default)s)")
    serve.add_argument("--max-iterations", type=int, default=defaults.max_iterations,
                       help="most iterations one job may ask for (default: %(default)s)")
    serve.add_argument("--memory-budget", type=_bytes, metavar="BYTES",
                       help="memory one job may use, e.g. 6GB; larger images run in tiles "
                            "(default: half the free RAM, or most of the free GPU memory)")
    serve.add_argument("--min-free-disk", type=_bytes, metavar="BYTES",
                       default=ServerConfig.min_free_disk,
                       help="refuse new jobs (507) while the data folder's disk has less free "
                            "(default: 2GB)")
    serve.add_argument("--threads", type=int, default=16,
                       help="HTTP threads: polling clients and event streams each hold one "
                            "while they wait (default: %(default)s)")
    serve.add_argument("--idle-timeout", type=_minutes, default=0.0, metavar="MINUTES",
                       help="stop after this many minutes with no request and no job "
                            "(default: 0, never; a server an editor starts uses the time "
                            "chosen at install-plugin)")
    serve.add_argument("--log-file", type=Path, metavar="PATH",
                       help="also append the log to this file (rotated at 2 MB)")

    for name, verb in (("install-plugin", "install"), ("package-plugin", "package")):
        command = commands.add_parser(name, help=f"{verb} the Krita or GIMP plugin")
        command.add_argument("editor", choices=plugin_install.EDITORS)
        command.set_defaults(run=_install if verb == "install" else _package)
        if verb == "install":
            command.add_argument("--dest", type=Path,
                                 help="the editor's plug-in folder, if not the usual one")
            command.add_argument("--gimp-version", metavar="3.N",
                                 help="the GIMP whose profile gets the plug-in (default: every "
                                      "GIMP 3 profile there is, else the GIMP on PATH)")
            command.add_argument("--idle-timeout", type=_minutes, metavar="MINUTES",
                                 default=launch.DEFAULT_IDLE_MINUTES,
                                 help="a server the editor starts stops after this many "
                                      "minutes without use (default: %(default)g; 0: never)")
        else:
            command.add_argument("-o", "--output", type=Path, required=True,
                                 help="zip file to write")

    check = commands.add_parser("doctor", help="check the things that decide whether the "
                                "server and plugins will work, and say what to do")
    check.set_defaults(run=_doctor)
    check.add_argument("--port", type=int, help="the port to check (default: the one in "
                       f"connection.json, else {DEFAULT_PORT})")

    token = commands.add_parser("token", help="print the access token (made at first use)")
    token.set_defaults(run=_token)
    token.add_argument("--config-dir", type=Path)
    return parser


if __name__ == "__main__":
    sys.exit(main())
