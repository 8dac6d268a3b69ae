"""The ``gradsweep`` command line: thin commands that parse, call the package and print."""

from __future__ import annotations

import json
import os
import sys
import traceback
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from functools import wraps
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from gradsweep.errors import GradsweepError, PluginWarning

if TYPE_CHECKING:
    from gradsweep.spec import PackSize

app = typer.Typer(
    help="GradNorm's adaptive task weights against an exhaustive static-weight search.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

F = TypeVar("F", bound=Callable[..., Any])


@app.callback()
def _root(ctx: typer.Context) -> None:
    """GradNorm's adaptive task weights against an exhaustive static-weight search."""
    ctx.with_resource(plugin_warnings_as_lines())
    # A user's problem (`package.module:callable`) imports from the working directory, as
    # with `python -m`, and as Ray's workers import it (launch puts it on their path).
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())


@contextmanager
def plugin_warnings_as_lines() -> Iterator[None]:
    """While a command runs, a plug-in's warning (``PluginWarning``: a problem's
    ``shared_layer``, say) is one ``warning: …`` line on stderr, as the CLI's own
    warnings are; any other is shown as before."""
    before = warnings.showwarning

    def show(
        message: Warning | str,
        category: type[Warning],
        filename: str,
        lineno: int,
        file: Any = None,
        line: str | None = None,
    ) -> None:
        if issubclass(category, PluginWarning):
            typer.echo(f"warning: {one_line(str(message))}", err=True)
        else:
            before(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = before


EXIT_USER_ERROR = 2
EXIT_TRIALS_FAILED = 3  # launch/resume: the study finished, some of its trials failed
EXIT_INTERRUPTED = 130
FAILURES_LISTED = 3  # reasons a launch's summary prints; `status STUDY` lists them all


def one_line(text: str) -> str:
    """A message as one printable line: whitespace runs become one space, other control
    characters (a terminal's escape codes among them) are shown escaped."""
    flat = " ".join(text.split())
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in flat)


def too_large(exc: OverflowError) -> bool:
    """Whether an overflow is an integer of the user's too large to store or pass on (a
    20-digit study id, say: ``int too large to convert to SQLite INTEGER``), not a
    computation gone out of range (a bug)."""
    return "too large to convert" in str(exc)


def fail(message: str, code: int = EXIT_USER_ERROR) -> typer.Exit:
    """Print one line on stderr and return the Exit to raise."""
    typer.echo(f"error: {one_line(message)}", err=True)
    return typer.Exit(code)


def user_errors(command: F) -> F:
    """Turn a user's mistake into one line on stderr and exit 2; Ctrl-C into exit 130."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        from sqlalchemy.exc import DataError, DBAPIError

        from gradsweep.storage.errors import StorageError
        from gradsweep.storage.reconnect import describe

        try:
            return command(*args, **kwargs)
        except (GradsweepError, StorageError) as exc:
            raise fail(str(exc)) from None
        except DataError as exc:  # a value the database cannot hold: a 20-digit id, say
            raise fail(f"the database refused a value: {describe(exc)}") from None
        except DBAPIError as exc:  # the database failed under a read: not the user's doing
            raise fail(f"the results database failed: {describe(exc)}", 1) from None
        except KeyboardInterrupt:
            raise fail("interrupted", EXIT_INTERRUPTED) from None
        except OverflowError as exc:  # a number given beyond what the database stores
            if not too_large(exc):
                raise
            raise fail(f"a number is too large: {exc}") from None

    return wrapper  # type: ignore[return-value]


DB_HELP = (
    "database URL, or a SQLite file's path (cancer.db, ~/studies.db); else $GRADSWEEP_DB, "
    "else sqlite:///gradsweep.db"
)
DbOption = Annotated[str | None, typer.Option("--db", help=DB_HELP)]
RayAddressOption = Annotated[
    str | None, typer.Option(help="address of a running Ray cluster (default: start local Ray)")
]
MaxConcurrentOption = Annotated[
    int | None, typer.Option(min=1, help="trials at once (overrides the spec)")
]
QuietOption = Annotated[bool, typer.Option(help="no live progress display")]
PackOption = Annotated[
    str | None,
    typer.Option(
        metavar="N|auto",
        help="at most N trials trained together per Ray trial, or auto: chosen from the "
        "device and the model's size (overrides resources.pack; the same values)",
    ),
]
FormatOption = Annotated[str, typer.Option("--format", help="table or json")]
ForceOption = Annotated[
    bool,
    typer.Option(
        "--force",
        help="replace an existing file that this command did not write (never the database "
        "being read, a folder or a device)",
    ),
]

spec_app = typer.Typer(help="Check a study spec or print its JSON schema.", no_args_is_help=True)
db_app = typer.Typer(help="Manage the results database.", no_args_is_help=True)
app.add_typer(spec_app, name="spec")
app.add_typer(db_app, name="db")


def pack_option(pack: str | None) -> PackSize | None:
    """``--pack``'s value, read as the spec's ``resources.pack`` is (a one-line error
    otherwise); checked before anything else runs."""
    from gradsweep.spec import read_pack

    return None if pack is None else read_pack(pack, "--pack")


def open_database(url: str | None, read_only: bool = False, create: bool = False) -> Any:
    """The results database, its schema upgraded if older. Only ``launch`` and ``db
    upgrade`` create one; every other command refuses a path where none exists, and a
    database without gradsweep's schema. How it was opened, where that matters (a read-only
    folder's file read as it is), is a ``note:`` line on stderr."""
    from gradsweep.storage.engine import open_engine

    def note(message: str) -> None:
        typer.echo(f"note: {one_line(message)}", err=True)

    return open_engine(url, read_only=read_only, create=create, note=note)


def print_outcome(outcome: Any, db: str | None) -> None:
    """Say how a launch or resume ended and where to look; exit 130 when interrupted, 3
    when the study finished with failed trials (their first reasons on stderr)."""
    from gradsweep.storage.engine import resolve_url, safe_url

    url = safe_url(resolve_url(db))  # a password never reaches a log
    typer.echo(
        f"study {outcome.study} (id {outcome.study_id}): {outcome.status}, "
        f"{outcome.completed}/{outcome.planned} completed, {outcome.failed} failed"
    )
    if outcome.interrupted:  # Ctrl-C or SIGTERM: said on stderr as outside Tune's run
        typer.echo(f"resume with: gradsweep resume {outcome.study} --db {url}")
        typer.echo("error: interrupted", err=True)
        raise typer.Exit(EXIT_INTERRUPTED)
    typer.echo(f"results in {url}; see: gradsweep status {outcome.study} --db {url}")
    if outcome.failed:
        print_failure_summary(outcome, url)
        raise typer.Exit(EXIT_TRIALS_FAILED)


def print_failure_summary(outcome: Any, url: str) -> None:
    """How many trials failed, the first reasons (each one line, a long one cut), and the
    commands that show them whole with the rest."""
    from gradsweep.console import clip

    typer.echo(f"{outcome.failed} trial(s) failed:", err=True)
    for failure in outcome.failures[:FAILURES_LISTED]:
        typer.echo(f"  {one_line(failure.key)}: {clip(one_line(failure.error))}", err=True)
    if outcome.failed > FAILURES_LISTED:
        typer.echo(f"  … and {outcome.failed - FAILURES_LISTED} more", err=True)
    typer.echo(
        f"whole reasons and tracebacks: gradsweep status {outcome.study} --db {url}  or  "
        "gradsweep query "
        f"trials --study {outcome.study} --status failed --format json --db {url}",
        err=True,
    )


@app.command()
@user_errors
def launch(
    spec: Annotated[str, typer.Argument(help="study spec YAML file")],
    ray_address: RayAddressOption = None,
    max_concurrent: MaxConcurrentOption = None,
    name: Annotated[str | None, typer.Option(help="study name (overrides the spec)")] = None,
    pack: PackOption = None,
    quiet: QuietOption = False,
    db: DbOption = None,
) -> None:
    """Run a study from a spec: every arm's trials on Ray Tune, every result in the database."""
    from gradsweep.search.launch import LaunchOptions, check_ray_address
    from gradsweep.search.launch import launch as launch_study
    from gradsweep.spec import dry_run_problem, load_spec

    pack_size = pack_option(pack)
    study_spec = load_spec(spec)
    check_ray_address(ray_address)  # before the database is opened: nothing written
    dry_run_problem(study_spec)  # before the database is opened: a broken problem writes nothing
    engine = open_database(db, create=True)
    options = LaunchOptions(ray_address, max_concurrent, name, quiet, pack_size)
    print_outcome(launch_study(study_spec, engine, options), db)


@app.command()
@user_errors
def resume(
    study: Annotated[str, typer.Argument(help="study name or id")],
    ray_address: RayAddressOption = None,
    max_concurrent: MaxConcurrentOption = None,
    pack: PackOption = None,
    quiet: QuietOption = False,
    db: DbOption = None,
) -> None:
    """Run exactly the trials of a study that have not completed (a study with none left
    is said at once, without starting Ray)."""
    from gradsweep.search.launch import LaunchOptions, check_ray_address
    from gradsweep.search.launch import resume as resume_study

    pack_size = pack_option(pack)
    check_ray_address(ray_address)  # before the study is touched
    engine = open_database(db)
    options = LaunchOptions(ray_address, max_concurrent, None, quiet, pack_size)
    outcome = resume_study(study, engine, options)
    if outcome.settled:  # answered from the database: Ray was never started
        typer.echo(
            f"nothing to resume: study '{outcome.study}' has all its {outcome.planned} "
            "planned trials completed"
        )
        return
    print_outcome(outcome, db)


@app.command()
@user_errors
def status(
    study: Annotated[str | None, typer.Argument(help="study name or id (default: all)")] = None,
    output: FormatOption = "table",
    db: DbOption = None,
) -> None:
    """Planned, completed, failed and running trials of one study or of all."""
    from gradsweep.status import print_status, study_statuses

    if output not in ("table", "json"):
        raise GradsweepError(f"--format: expected table or json, got {output!r}")
    statuses = study_statuses(open_database(db, read_only=True), study)
    if output == "json":
        payload: Any = statuses[0] if study is not None else statuses
        typer.echo(json.dumps(payload, indent=2, default=str))
    else:
        print_status(statuses)


@app.command()
@user_errors
def compare(
    study: Annotated[str, typer.Argument(help="study name or id")],
    output: Annotated[
        str,
        typer.Option(
            "--format",
            help="table, json, or verdicts (only the verdict lines and warnings, plain text)",
        ),
    ] = "table",
    checkpoint: Annotated[
        str | None,
        typer.Option(
            help="final or best_validation: each trial's result at its last evaluation or "
            "at its best on validation (default: the spec's selection.checkpoint)"
        ),
    ] = None,
    db: DbOption = None,
) -> None:
    """The static optimum (chosen on validation, scored on test) against each adaptive
    configuration (stored in the database)."""
    from gradsweep.arms import Checkpoint
    from gradsweep.compare import comparison_tables, verdict_plain_lines
    from gradsweep.console import output_console, print_table
    from gradsweep.results.answer import compare_study

    if output not in ("table", "json", "verdicts"):
        raise GradsweepError(f"--format: expected table, json or verdicts, got {output!r}")
    chosen = None
    if checkpoint is not None:
        if checkpoint not in {c.value for c in Checkpoint}:
            raise GradsweepError(
                f"--checkpoint: expected final or best_validation, got {checkpoint!r}"
            )
        chosen = Checkpoint(checkpoint)
    comparison = compare_study(open_database(db), study, store=True, checkpoint=chosen)
    if output == "json":
        typer.echo(json.dumps(comparison.to_dict(), indent=2))
        return
    if output == "verdicts":
        typer.echo("\n".join(verdict_plain_lines(comparison)))
        return
    console = output_console()
    for renderable in comparison_tables(comparison):
        print_table(renderable, console)


@app.command()
@user_errors
def query(
    kind: Annotated[str, typer.Argument(help="studies, trials, curves or weights")],
    study: Annotated[str | None, typer.Option(help="study name or id")] = None,
    arm: Annotated[str | None, typer.Option(help="only this arm")] = None,
    status_filter: Annotated[
        str | None, typer.Option("--status", help="only trials with this status")
    ] = None,
    output: Annotated[str, typer.Option("--format", help="table, csv or json")] = "table",
    db: DbOption = None,
) -> None:
    """Print stored results as a table, CSV or JSON."""
    from gradsweep.output import FORMATS, print_frame
    from gradsweep.query import query_frame

    if output not in FORMATS:
        raise GradsweepError(f"--format: expected table, csv or json, got {output!r}")
    frame = query_frame(open_database(db, read_only=True), kind, study, arm, status_filter)
    print_frame(frame, output)


@app.command()
@user_errors
def export(
    study: Annotated[str, typer.Argument(help="study name or id")],
    out: Annotated[str | None, typer.Option(help="folder to write the files into")] = None,
    output: Annotated[str, typer.Option("--format", help="parquet or csv")] = "parquet",
    optuna_name: Annotated[
        str | None,
        typer.Option(
            "--optuna",
            help="also write every completed trial into this multi-objective Optuna study "
            "in the same database (for optuna-dashboard)",
        ),
    ] = None,
    force: ForceOption = False,
    db: DbOption = None,
) -> None:
    """Write a study's trials, curves and weight traces as Parquet or CSV files, and/or
    every arm as one Optuna study (a file is replaced only by one of its kind, unless
    --force)."""
    from pathlib import Path

    from gradsweep.console import visible
    from gradsweep.query import export_study

    if out is None and optuna_name is None:
        raise GradsweepError("export: give --out DIR, --optuna NAME, or both")
    if out is not None:
        for path in export_study(
            open_database(db, read_only=True), study, Path(out), output, force=force
        ):
            typer.echo(visible(str(path)))
    if optuna_name is not None:
        from gradsweep.results.optuna_export import export_optuna

        done = export_optuna(open_database(db), study, optuna_name)
        typer.echo(
            f"optuna study {done.name}: {done.added} trials added, {done.present} already there"
        )


@app.command()
@user_errors
def report(
    study: Annotated[str, typer.Argument(help="study name or id")],
    out: Annotated[str, typer.Option(help="HTML file to write")] = "report.html",
    force: ForceOption = False,
    db: DbOption = None,
) -> None:
    """Write the study's figures and comparison as one self-contained HTML file (it
    replaces only a report it wrote, unless --force)."""
    from pathlib import Path

    from gradsweep.console import visible
    from gradsweep.dashboards.report import write_report

    path = Path(out)
    if not out.strip() or path.is_dir():
        raise GradsweepError(f"--out: expected an HTML file to write, got {out!r}")
    if not path.parent.exists():
        raise GradsweepError(f"--out: folder {path.parent} does not exist")
    typer.echo(visible(str(write_report(open_database(db, read_only=True), study, out, force))))


@app.command()
@user_errors
def dashboard(
    host: Annotated[str, typer.Option(help="address to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="port")] = 8050,
    token: Annotated[
        str | None, typer.Option(help="require ?token=… (advised beyond 127.0.0.1)")
    ] = None,
    db: DbOption = None,
) -> None:
    """Browse studies in a read-only web app (Plotly Dash)."""
    from gradsweep.dashboards.app import create_app, exposure_warning
    from gradsweep.storage.engine import resolve_url, safe_url

    warning = exposure_warning(host, token)
    if warning:
        typer.echo(f"warning: {warning}", err=True)
    dash_app = create_app(open_database(db, read_only=True), token)
    typer.echo(f"gradsweep dashboard on http://{host}:{port}/ over {safe_url(resolve_url(db))}")
    dash_app.run(host=host, port=port, debug=False)


def launch_database(db: str | None) -> Any | None:
    """The database ``launch`` would use (``--db``, else $GRADSWEEP_DB, else the default),
    read-only; None where a SQLite file is not there yet (launch would create it: a new
    study) or the database cannot be opened (said on stderr: counted as a new study)."""
    from pathlib import Path

    from gradsweep.storage.engine import parse_url, resolve_url
    from gradsweep.storage.errors import StorageError

    url = resolve_url(db)
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite" and not Path(parsed.database or "").exists():
        return None
    try:
        return open_database(url, read_only=True)
    except StorageError as exc:
        typer.echo(f"warning: {one_line(str(exc))}; counted as a new study", err=True)
        return None


@spec_app.command("check")
@user_errors
def spec_check(
    path: Annotated[str, typer.Argument(help="study spec YAML file")],
    max_concurrent: MaxConcurrentOption = None,
    name: Annotated[str | None, typer.Option(help="study name (overrides the spec)")] = None,
    pack: PackOption = None,
    db: Annotated[
        str | None,
        typer.Option(
            "--db",
            help="the database launch would use (a URL or a SQLite file's path; else "
            "$GRADSWEEP_DB, else sqlite:///gradsweep.db), read, never written: a study "
            "stored there is counted and packed as launch would continue it",
        ),
    ] = None,
) -> None:
    """Validate a spec, dry-run its problem, and say what launch would run and how it would
    pack its trials (on this database, with these options: the same count and pack size)."""
    from gradsweep.arms import weights_in_key
    from gradsweep.plan import shared_weightings
    from gradsweep.search.launch import LaunchOptions, preview
    from gradsweep.spec import dry_run_problem, load_spec, renamed, validate_spec
    from gradsweep.storage.engine import resolve_url, safe_url

    pack_size = pack_option(pack)
    study_spec = load_spec(path)
    if name:
        study_spec = renamed(study_spec, name)
    tasks = validate_spec(study_spec)
    dry_run_problem(study_spec)
    options = LaunchOptions(max_concurrent=max_concurrent, pack=pack_size)
    plan = preview(study_spec, launch_database(db), options)
    arms = ", ".join(study_spec.arms.names())
    typer.echo(
        f"{path}: ok: study {study_spec.study}, {tasks} tasks, arms {arms}, {plan.planned} trials"
    )
    typer.echo("dry run: one training step and one test batch on the CPU, ok")
    for weights in shared_weightings(study_spec, tasks):
        typer.echo(
            f"static weighting {weights_in_key(weights)} is also a grid point: "
            "trained once per seed, counted for both arms"
        )
    if plan.stored:
        counts = plan.counts
        typer.echo(
            f"study {study_spec.study} in {safe_url(resolve_url(db))}: {counts.completed} of "
            f"{counts.planned} trials completed; launch there runs the other {counts.remaining}"
        )
    typer.echo(plan.packing.reason)


@spec_app.command("schema")
def spec_schema() -> None:
    """Print the JSON schema of a study spec."""
    from gradsweep.spec import spec_json_schema

    typer.echo(json.dumps(spec_json_schema(), indent=2))


@db_app.command("upgrade")
@user_errors
def db_upgrade(db: DbOption = None) -> None:
    """Create the database or bring its schema up to this version."""
    from gradsweep.storage.engine import resolve_url, safe_url, upgrade_database

    url = resolve_url(db)
    upgrade_database(url)
    typer.echo(f"{safe_url(url)}: schema up to date")


def parse_floats(option: str, text: str | None) -> list[float] | None:
    """``"1,100"`` → ``[1.0, 100.0]``; a bad list is a user error naming the option."""
    if text is None:
        return None
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise GradsweepError(f"{option}: expected comma-separated numbers, got {text!r}") from None


def balancer_help() -> str:
    """``train --balancer``'s help, from the balancers' declarations."""
    from gradsweep.trainers.balancers.catalog import built_in  # torch-free

    return f"{', '.join(built_in())}, or package.module:Class (your own; docs/balancers.md)"


def parse_params(pairs: list[str], option: str = "--param") -> dict[str, Any]:
    """``key=value`` pairs; values are read as JSON when they parse, else kept as text."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise GradsweepError(f"{option}: expected key=value, got {pair!r}")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


@app.command()
@user_errors
def train(
    problem: Annotated[
        str,
        typer.Option(
            help="toy, digits, multimnist, nyuv2, or package.module:callable (a "
            "MultitaskProblem subclass or a @gradsweep.problem_factory; docs/problems.md)"
        ),
    ] = "toy",
    tasks: Annotated[int, typer.Option(help="number of tasks (toy)")] = 2,
    sigmas: Annotated[str | None, typer.Option(help="toy task scales, e.g. 1,100")] = None,
    balancer: Annotated[str, typer.Option(help=balancer_help())] = "gradnorm",
    weights: Annotated[str | None, typer.Option(help="static weights, e.g. 1,1")] = None,
    alpha: Annotated[float | None, typer.Option(help="GradNorm alpha (default 0.12)")] = None,
    lr: Annotated[
        float | None,
        typer.Option(
            help="learning rate of a balancer's own weights, for one that has it (GradNorm's "
            "w, uncertainty's log-variances; default 0.025)"
        ),
    ] = None,
    initial_loss: Annotated[
        str | None,
        typer.Option(help="GradNorm: first_batch (default), theoretical or first_epoch_mean"),
    ] = None,
    balancer_param: Annotated[
        list[str] | None,
        typer.Option(
            help="other balancer parameters key=value, e.g. temperature=2 (several pairs, or "
            "the flag repeated)"
        ),
    ] = None,
    steps: Annotated[int, typer.Option(help="training steps")] = 2000,
    seed: Annotated[int, typer.Option(help="initialisation and batch-order seed")] = 0,
    param: Annotated[
        list[str] | None,
        typer.Option(
            help="extra problem parameters key=value ... (several pairs, or the flag repeated)"
        ),
    ] = None,
    device: Annotated[str | None, typer.Option(help="cpu or cuda (default: cuda if any)")] = None,
    precision: Annotated[
        str, typer.Option(help="fp32, or bf16 (bfloat16 autocast for the forward pass)")
    ] = "fp32",
    as_json: Annotated[bool, typer.Option("--json", help="print the result as JSON")] = False,
) -> None:
    """Train one network with one balancer and print its weights and test losses."""
    from gradsweep.single_run import SingleRun, print_summary, run_single, summary

    run = SingleRun(
        problem=problem,
        problem_params=parse_params(param or []),
        tasks=tasks,
        sigmas=parse_floats("--sigmas", sigmas),
        balancer=balancer,
        weights=parse_floats("--weights", weights),
        alpha=alpha,
        lr=lr,
        initial_loss=initial_loss,
        balancer_params=parse_params(balancer_param or [], "--balancer-param"),
        steps=steps,
        seed=seed,
        device=device,
        precision=precision,
    )
    result = run_single(run, progress=not as_json)
    if as_json:
        from gradsweep.output import json_text

        typer.echo(json_text(summary(result)))  # strict JSON: a non-finite number as null
    else:
        print_summary(result)
    from gradsweep.arms import TrialStatus

    if result.status != TrialStatus.COMPLETED:
        raise typer.Exit(1)


def _add_to_parser_taking_pairs(self: Any, parser: Any, ctx: Any) -> None:
    """A repeatable ``key=value`` option that also takes the pairs after it: ``--param a=1
    b=2`` is ``--param a=1 --param b=2`` (the command has no positional argument that a
    ``key=value`` word could be)."""
    base: Any = type(self).__mro__[1]
    base.add_to_parser(self, parser, ctx)
    for name in self.opts:
        option = parser._long_opt.get(name)
        if option is None:
            continue
        single = option.process

        def process(value: Any, state: Any, single: Any = single) -> None:
            single(value, state)
            while state.rargs and "=" in state.rargs[0] and not state.rargs[0].startswith("-"):
                single(state.rargs.pop(0), state)

        option.process = process


def take_several_pairs(group: Any, command: str, options: Sequence[str]) -> None:
    """Let ``options`` of ``command`` take several ``key=value`` pairs after one flag."""
    target = getattr(group, "commands", {}).get(command)
    for param in getattr(target, "params", []):
        if set(getattr(param, "opts", ())) & set(options):
            base = type(param)
            param.__class__ = type(
                "SeveralPairs" + base.__name__,
                (base,),
                {"add_to_parser": _add_to_parser_taking_pairs},
            )


def click_command() -> Any:
    """The command line as click runs it (``run``, and the docs test's parser)."""
    command = typer.main.get_command(app)
    take_several_pairs(command, "train", ("--param", "--balancer-param"))
    return command


def run(argv: Sequence[str] | None = None) -> int:
    """The command line as a function returning the exit code: 0 done, 1 an internal
    failure, 2 a mistake in the command or its input, 130 interrupted. Every failure is
    one line on stderr; ``GRADSWEEP_DEBUG=1`` adds the traceback of an internal one."""
    command = click_command()
    try:
        code = command.main(
            args=list(argv) if argv is not None else None,
            prog_name="gradsweep",
            standalone_mode=False,
        )
    except typer.Abort:
        typer.echo("error: interrupted", err=True)
        return EXIT_INTERRUPTED
    except typer.TyperException as exc:  # unknown option, bad value, missing argument …
        message = one_line(exc.format_message())  # type: ignore[attr-defined]
        context = getattr(exc, "ctx", None)
        where = f"{context.command_path}: " if context is not None else ""
        if message:  # (no arguments at all: the help was printed instead)
            typer.echo(f"error: {where}{message}", err=True)
        return int(getattr(exc, "exit_code", EXIT_USER_ERROR))
    except Exception as exc:  # a bug: say so in one line, the traceback on request
        if os.environ.get("GRADSWEEP_DEBUG"):
            traceback.print_exc()
        typer.echo(f"error: internal error: {type(exc).__name__}: {one_line(str(exc))}", err=True)
        return 1
    return code if isinstance(code, int) else 0


def main() -> None:
    sys.exit(run())


if __name__ == "__main__":
    main()
