"""The `flink` command: `run`, `list`, `cancel`, `savepoint`, `stop`, `info`, as Flink's CLI.

`flink run [-d] -py job.py [-p N] [-m host:port] [-pyfs a.py,b/] [-pyreq req.txt[#cache]] [-pyarch a.zip[#dir]]
[-pyexec python] [args]` runs the script (the -py* options are PyFlink's python.files, python.requirements,
python.archives and python.executable: shipped with the job, see runtime/python_artifacts.py); its
`env.execute()` builds the job graph and submits it to the leader found in ZooKeeper (or through `-m`, a
JobManager's REST address) and prints the job id and the dashboard's URL. A script that fails before
submitting gets its traceback printed, and nothing is persisted. `flink list` prints Flink's lines (`--table`: a table); savepoints
show their progress while the CLI waits; errors name the JobManager asked and what it answered."""

from __future__ import annotations

import argparse
import os
import re
import runpy
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from ha_flink import FLINK_REVISION, FLINK_VERSION
from ha_flink.config import ConfigurationError, load_configuration
from ha_flink.config.loader import parse_dynamic_properties, split_dynamic_properties


def _program_configuration(overrides: list[str]) -> dict[str, str]:
    """What a program submitted by `flink run`/`info` starts with, as Flink's effective configuration: the
    conf dir's `parallelism.default` (the one setting of a session cluster's file that is the job's), then
    the `-D` settings, which win."""
    from ha_flink.config import CoreOptions

    config = load_configuration(os.environ.get("FLINK_CONF_DIR"), (), required=False)
    settings = {}
    if config.contains(CoreOptions.DEFAULT_PARALLELISM):
        settings[CoreOptions.DEFAULT_PARALLELISM.key] = str(config.get(CoreOptions.DEFAULT_PARALLELISM))
    return {**settings, **dict(parse_dynamic_properties(overrides))}


def _client(args: argparse.Namespace, overrides: list[str]):  # noqa: ANN202 - avoids an import at start-up
    from ha_flink.client.cluster_client import ClusterClient

    config = load_configuration(os.environ.get("FLINK_CONF_DIR"), overrides, required=False)
    return ClusterClient(config, getattr(args, "jobmanager", None))


def cmd_run(args: argparse.Namespace, overrides: list[str]) -> int:
    script = Path(args.python)
    if not script.is_file():
        print(f"flink run: the Python program {script} does not exist", file=sys.stderr)
        return 1
    python_settings = {key: value for key, value in (
        ("python.files", args.pyFiles), ("python.requirements", args.pyRequirements),
        ("python.archives", args.pyArchives), ("python.executable", args.pyExecutable),
        ("python.client.executable", args.pyClientExecutable)) if value}
    with tempfile.TemporaryDirectory(prefix="flink-run-pyfiles-") as links:
        try:
            _put_python_files_on_path(args.pyFiles, Path(links))
        except (OSError, ValueError) as error:
            print(f"flink run: {error}", file=sys.stderr)
            return 1
        return _run_script(args, overrides, script, python_settings)


def _put_python_files_on_path(py_files: str | None, links: Path) -> None:
    """`-pyfs` on the client, as Flink lays them out for the driver: a .py file's folder (a link to the
    file in a folder of its own), a folder itself and a folder holding a link to it (its modules, and the
    folder as a package), a .zip, .whl or .egg itself (zipimport)."""
    from ha_flink.runtime import python_artifacts as pa

    for index, entry in enumerate(pa.split_entries(py_files)):
        path = Path(pa.require_exists(pa.FILES, entry))
        where = links / str(index)
        where.mkdir()
        if path.is_dir():
            (where / path.name).symlink_to(path, target_is_directory=True)
            sys.path[0:0] = [str(path), str(where)]
        elif path.suffix == ".py":
            (where / path.name).symlink_to(path)
            sys.path.insert(0, str(where))
        else:
            sys.path.insert(0, str(path))


def _run_script(args: argparse.Namespace, overrides: list[str], script: Path, python_settings: dict[str, str]) -> int:
    from ha_flink.client import submission

    sys.path.insert(0, str(script.resolve().parent))
    with _client(args, overrides) as client:
        context = submission.SubmissionContext(client, args.detached, args.parallelism, [],
                                               savepoint_path=args.fromSavepoint,
                                               allow_non_restored_state=args.allowNonRestoredState,
                                               python_settings=python_settings,
                                               dynamic_properties=_program_configuration(overrides),
                                               shutdown_on_attached_exit=args.shutdownOnAttachedExit)
        submission.activate(context)
        program_args = args.args[1:] if args.args[:1] == ["--"] else args.args  # (split_cli_arguments' "--")
        sys.argv = [str(script), *program_args]
        try:
            runpy.run_path(str(script), run_name="__main__")
        except SystemExit as exit_:
            if exit_.code not in (0, None):
                return int(exit_.code) if isinstance(exit_.code, int) else 1
        except Exception:
            print(f"flink run: the program {script} failed:", file=sys.stderr)
            traceback.print_exc()
            return 1
        finally:
            submission.activate(None)
        if not context.submitted:
            print(f"flink run: the program {script} submitted no job (did it call env.execute()?)", file=sys.stderr)
            return 1
    return 0


def _duration(seconds: float) -> str:
    seconds = int(max(0, seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60} min"


def format_jobs(jobs: list[Any], now: float) -> list[str]:
    """`flink list`'s table: one row per job, columns as wide as their widest cell."""
    rows = [("JOB ID", "NAME", "STATE", "START TIME", "DURATION")]
    for job in jobs:
        started = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(job.start_time / 1000)) if job.start_time else "-"
        rows.append((job.job_id, job.name, job.state, started,
                     _duration(now - job.start_time / 1000) if job.start_time else "-"))
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]


_RULE = "--------------------------------------------------------------"
_SCHEDULED_STATES = ("CREATED", "INITIALIZING")
_TERMINAL_STATES = ("FINISHED", "CANCELED", "FAILED")


def flink_list_lines(jobs: list[Any], running: bool, scheduled: bool, terminated: bool) -> list[str]:
    """Flink's `flink list` output, line for line (scripts parse it): the running/restarting, scheduled and
    terminated jobs as `dd.MM.yyyy HH:mm:ss : <jobid> : <name> (<STATE>)`, by state, then start time."""

    def section(title: str, chosen: list[Any]) -> list[str]:
        by_state = sorted(chosen, key=lambda j: j.state.lower())  # (grouped by state, as Flink's)
        rows = [f"{time.strftime('%d.%m.%Y %H:%M:%S', time.localtime(job.start_time / 1000))} : {job.job_id} : "
                f"{job.name} ({job.state})" for job in sorted(by_state, key=lambda j: j.start_time)]
        return [title, *rows, _RULE]

    lines: list[str] = []
    running_jobs = [j for j in jobs if j.state not in _SCHEDULED_STATES + _TERMINAL_STATES]
    scheduled_jobs = [j for j in jobs if j.state in _SCHEDULED_STATES]
    terminated_jobs = [j for j in jobs if j.state in _TERMINAL_STATES]
    if running:
        lines += section("------------------ Running/Restarting Jobs -------------------", running_jobs) \
            if running_jobs else ["No running jobs."]
    if scheduled:
        lines += section("----------------------- Scheduled Jobs -----------------------", scheduled_jobs) \
            if scheduled_jobs else ["No scheduled jobs."]
    if terminated and terminated_jobs:
        lines += section("---------------------- Terminated Jobs -----------------------", terminated_jobs)
    return lines


def cmd_list(args: argparse.Namespace, overrides: list[str]) -> int:
    running, scheduled = args.running or args.all, args.scheduled or args.all
    if not (running or scheduled):  # no flag: running and scheduled, as Flink's
        running = scheduled = True
    print("Waiting for response...", flush=True)
    with _client(args, overrides) as client:
        jobs = client.list_jobs()
        asked = client.fixed_address or client.leader()[0]
    # which JobManager answered goes to stderr: stdout is Flink's, line for line
    print(f"(jobs of the leading JobManager, asked {asked})", file=sys.stderr)
    if args.table:
        shown = jobs if args.all else [j for j in jobs if j.state not in _TERMINAL_STATES]
        print("\n".join(format_jobs(sorted(shown, key=lambda j: j.start_time), time.time())) if shown else
              ("No jobs." if args.all else "No running jobs."))
        return 0
    print("\n".join(flink_list_lines(jobs, running, scheduled, args.all)))
    return 0


def cmd_cancel(args: argparse.Namespace, overrides: list[str]) -> int:
    if args.job_id is None:
        if args.withSavepoint and re.fullmatch(r"[0-9a-f]{32}", args.withSavepoint):
            args.job_id, args.withSavepoint = args.withSavepoint, ""  # `cancel -s <jobid>`: no folder given
        else:
            print("flink cancel: which job? usage: flink cancel [-s [targetDirectory]] <jobID>", file=sys.stderr)
            return 1
    with _client(args, overrides) as client:
        if args.withSavepoint is not None:
            path = client.savepoint(args.job_id, args.withSavepoint or None, then="cancel", progress=_progress)
            print(f"Cancelled job {args.job_id}. Savepoint stored in {path}.")
            return 0
        print(f"Cancelling job {args.job_id}.", flush=True)
        client.cancel(args.job_id)
    print(f"Cancelled job {args.job_id}.")
    return 0


def _progress(message: str) -> None:
    # (to stderr: stdout carries Flink's own lines, line for line, which scripts parse)
    print(message, file=sys.stderr, flush=True)


def _format_type(args: argparse.Namespace) -> str:
    return (args.type or "canonical").upper()


def cmd_savepoint(args: argparse.Namespace, overrides: list[str]) -> int:
    if args.dispose is not None:
        print(f"Disposing savepoint '{args.dispose}'.")
        print("Waiting for response...", flush=True)
        with _client(args, overrides) as client:
            client.dispose_savepoint(args.dispose)
        print(f"Savepoint '{args.dispose}' disposed.")
        return 0
    if args.job_id is None:
        print("flink savepoint: which job? usage: flink savepoint [-type canonical] [-detached] <jobID> "
              "[targetDirectory] | flink savepoint -d <savepointPath>", file=sys.stderr)
        return 1
    with _client(args, overrides) as client:
        if args.detached:
            print(f"Triggering savepoint in detached mode for job {args.job_id}.", flush=True)
            trigger = client.savepoint(args.job_id, args.target_directory, format_type=_format_type(args),
                                       detached=True)
            print(f"Successfully trigger manual savepoint, triggerId: {trigger}")
            return 0
        print(f"Triggering savepoint for job {args.job_id}.")
        print("Waiting for response...", flush=True)
        path = client.savepoint(args.job_id, args.target_directory, progress=_progress, format_type=_format_type(args))
    print(f"Savepoint completed. Path: {path}")
    print("You can resume your program from this savepoint with the run command.")
    return 0


def cmd_stop(args: argparse.Namespace, overrides: list[str]) -> int:
    print(f'{"Draining" if args.drain else "Suspending"} job "{args.job_id}" with a {_format_type(args)} savepoint.')
    then = "drain" if args.drain else "stop"
    with _client(args, overrides) as client:
        if args.detached:
            print(f"Triggering stop-with-savepoint in detached mode for job {args.job_id}.", flush=True)
            trigger = client.savepoint(args.job_id, args.savepointPath, then=then, format_type=_format_type(args),
                                       detached=True)
            print(f"Successfully trigger stop-with-savepoint in detached mode, triggerId: {trigger}")
            return 0
        print(f"Triggering stop-with-savepoint for job {args.job_id}.")
        print("Waiting for response...", flush=True)
        path = client.savepoint(args.job_id, args.savepointPath, then=then, progress=_progress,
                                format_type=_format_type(args))
    print(f"Savepoint completed. Path: {path}")
    return 0


def cmd_checkpoint(args: argparse.Namespace, overrides: list[str]) -> int:
    print(f"Triggering checkpoint for job {args.job_id}.")
    print("Waiting for response...", flush=True)
    with _client(args, overrides) as client:
        checkpoint_id = client.checkpoint(args.job_id, full=args.full)
    print(f"Checkpoint{'(FULL)' if args.full else ''} {checkpoint_id} for job {args.job_id} completed.")
    print("You can resume your program from this checkpoint with the run command.")
    return 0


def cmd_info(args: argparse.Namespace, overrides: list[str]) -> int:
    from ha_flink.client import submission

    context = submission.SubmissionContext(None, True, args.parallelism, [], plans=[],
                                           dynamic_properties=_program_configuration(overrides))
    submission.activate(context)
    try:
        runpy.run_path(args.python, run_name="__main__")
    finally:
        submission.activate(None)
    if not context.plans:
        print(f"flink info: {args.python} declares no job (it called no env.execute())", file=sys.stderr)
        return 1
    for plan in context.plans:  # (Flink's frame, line for line)
        print("----------------------- Execution Plan -----------------------")
        print(plan)
        print("--------------------------------------------------------------")
    print("\nNo description provided.")
    return 0


def _savepoint_options(action: argparse.ArgumentParser) -> None:
    # Flink's spellings, one dash or two (its commons-cli options)
    action.add_argument("-type", "--type", type=str.lower, choices=("canonical", "native"), default=None,
                        help="the savepoint's format: canonical (native is refused: not provided)")
    action.add_argument("-detached", "--detached", action="store_true",
                        help="return once the leader accepted it, printing the trigger id (its status: REST)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="flink", description="ha-flink command line client")
    parser.add_argument("-v", "--version", action="version", version=f"Version: {FLINK_VERSION}, Commit ID: "
                                                                        f"{FLINK_REVISION}")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="submit a Python job to the cluster")
    run.add_argument("-py", "--python", required=True, help="the job script")
    run.add_argument("-d", "--detached", action="store_true", help="do not wait for the job to end")
    run.add_argument("-sae", "--shutdownOnAttachedExit", action="store_true",
                     help="attached: if this client is interrupted (Ctrl-C, SIGTERM), cancel the job first")
    run.add_argument("-p", "--parallelism", type=int, default=None)
    run.add_argument("-m", "--jobmanager", default=None, help="host:port of a JobManager's REST endpoint")
    run.add_argument("-pyfs", "--pyFiles", default=None,
                     help="python.files: comma-separated .py files, folders, .zip/.whl files shipped with the job "
                          "and put on the path of its functions (and of the program)")
    run.add_argument("-pyreq", "--pyRequirements", default=None,
                     help="python.requirements: a requirements file, optionally #folder of the packages to install "
                          "from offline (pip download -d folder -r requirements.txt)")
    run.add_argument("-pyarch", "--pyArchives", default=None,
                     help="python.archives: comma-separated zip/tar files, each optionally #target folder, unpacked "
                          "into the job's working folder")
    run.add_argument("-pyexec", "--pyExecutable", default=None,
                     help="python.executable: only the TaskManagers' own interpreter can be named (tasks run in it)")
    run.add_argument("-pyclientexec", "--pyClientExecutable", default=None,
                     help="python.client.executable: only this interpreter can be named (the program runs in it)")
    run.add_argument("-s", "--fromSavepoint", default=None, help="restore the job's state from this savepoint")
    run.add_argument("-n", "--allowNonRestoredState", action="store_true",
                     help="skip savepoint state that no operator of the job takes")
    run.add_argument("args", nargs=argparse.REMAINDER)
    for name, help_text in (("list", "list running jobs"), ("cancel", "cancel a job")):
        sub = commands.add_parser(name, help=help_text)
        sub.add_argument("-m", "--jobmanager", default=None)
        if name == "list":
            sub.add_argument("-r", "--running", action="store_true", help="only running (and restarting) jobs")
            sub.add_argument("-s", "--scheduled", action="store_true", help="only scheduled jobs")
            sub.add_argument("-a", "--all", action="store_true",
                             help="running, scheduled and the finished, cancelled and failed jobs")
            sub.add_argument("--table", action="store_true",
                             help="(ha-flink's) a table with start times and durations instead of Flink's lines")
        if name == "cancel":
            sub.add_argument("-s", "--withSavepoint", nargs="?", const="", default=None,
                             help="take a savepoint (into this folder, else state.savepoints.dir) first")
            sub.add_argument("job_id", nargs="?")
    savepoint = commands.add_parser("savepoint", help="take a savepoint of a running job, or dispose of one")
    savepoint.add_argument("-m", "--jobmanager", default=None)
    savepoint.add_argument("-d", "--dispose", default=None, metavar="savepointPath",
                           help="delete this savepoint folder (through the leader)")
    _savepoint_options(savepoint)
    savepoint.add_argument("job_id", nargs="?")
    savepoint.add_argument("target_directory", nargs="?", default=None)
    stop = commands.add_parser("stop", help="take a savepoint and stop the job")
    stop.add_argument("-m", "--jobmanager", default=None)
    stop.add_argument("-p", "--savepointPath", default=None)
    stop.add_argument("-d", "--drain", action="store_true",
                      help="end the sources' input first: every window and event-time timer fires before the "
                           "savepoint, and the job finishes with it")
    _savepoint_options(stop)
    stop.add_argument("job_id")
    checkpoint = commands.add_parser("checkpoint", help="take a checkpoint of a running job now")
    checkpoint.add_argument("-m", "--jobmanager", default=None)
    checkpoint.add_argument("-full", "--full", action="store_true",
                            help="a full checkpoint, also of a job that checkpoints incrementally")
    checkpoint.add_argument("job_id")
    info = commands.add_parser("info", help="print the job graph a script builds")
    info.add_argument("-py", "--python", required=True)
    info.add_argument("-p", "--parallelism", type=int, default=None)
    return parser


def split_cli_arguments(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[list[str], list[str]]:
    """(`-D` overrides, the rest), as Flink's parser reads them: options up to the first argument that is not
    one of the action's options (a program argument, for `run`/`info`), the rest as they are, so a `-D`
    among a program's own arguments stays the program's."""
    actions = next((a.choices for a in parser._actions if isinstance(a, argparse._SubParsersAction)), {})
    action = actions.get(argv[0]) if argv else None
    if action is None or argv[0] not in ("run", "info"):
        return split_dynamic_properties(argv)
    known = action._option_string_actions
    overrides, rest = [], [argv[0]]
    index = 1
    while index < len(argv):
        token = argv[index]
        if token == "-D" or (token.startswith("-D") and token not in known):
            overrides += split_dynamic_properties(argv[index:index + 2] if token == "-D" else [token])[0]
            index += 2 if token == "-D" else 1
            continue
        option = known.get(token.split("=", 1)[0])
        if option is None:  # the program's arguments begin
            rest += ["--", *argv[index:]] if argv[index:] and argv[index].startswith("-") else argv[index:]
            break
        takes_value = option.nargs != 0 and "=" not in token
        rest += argv[index:index + (2 if takes_value else 1)]
        index += 2 if takes_value else 1
    return overrides, rest


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    overrides, rest = split_cli_arguments(parser, sys.argv[1:] if argv is None else argv)
    args = parser.parse_args(rest)
    handler = {"run": cmd_run, "list": cmd_list, "cancel": cmd_cancel, "info": cmd_info, "savepoint": cmd_savepoint,
               "stop": cmd_stop, "checkpoint": cmd_checkpoint}[args.command]
    try:
        return handler(args, overrides)
    except KeyboardInterrupt:  # Ctrl-C (or, with -sae, SIGTERM): no traceback
        print(f"flink {args.command}: interrupted", file=sys.stderr)
        return 130
    except ConfigurationError as error:
        print(f"flink {args.command}: {error}", file=sys.stderr)
        return 1
    except ConnectionError as error:
        print(f"flink {args.command}: {error}", file=sys.stderr)
        return 1
    except TimeoutError as error:
        print(f"flink {args.command}: {error}", file=sys.stderr)
        return 1
    except Exception as error:
        from ha_flink.client.cluster_client import JobManagerError, RestError

        if isinstance(error, (RestError, JobManagerError)):
            print(f"flink {args.command}: {error}", file=sys.stderr)
            return 1
        details = getattr(error, "details", None)
        if callable(details):  # a gRPC error: its message, not a traceback
            print(f"flink {args.command}: {details()}", file=sys.stderr)
            return 1
        raise


if __name__ == "__main__":
    sys.exit(main())
