"""The ``gradsweep`` command line: thin commands that parse, call the package and print."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from functools import wraps
from typing import Annotated, Any, TypeVar

import typer

from gradsweep.errors import GradsweepError

app = typer.Typer(
    help="GradNorm's adaptive task weights against an exhaustive static-weight search.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)

F = TypeVar("F", bound=Callable[..., Any])


@app.callback()
def _root() -> None:
    """GradNorm's adaptive task weights against an exhaustive static-weight search."""


EXIT_USER_ERROR = 2
EXIT_INTERRUPTED = 130


def fail(message: str, code: int = EXIT_USER_ERROR) -> typer.Exit:
    """Print one line on stderr and return the Exit to raise."""
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(code)


def user_errors(command: F) -> F:
    """Turn a user's mistake into one line on stderr and exit 2; Ctrl-C into exit 130."""

    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except GradsweepError as exc:
            raise fail(str(exc)) from None
        except KeyboardInterrupt:
            raise fail("interrupted", EXIT_INTERRUPTED) from None

    return wrapper  # type: ignore[return-value]


def parse_floats(option: str, text: str | None) -> list[float] | None:
    """``"1,100"`` → ``[1.0, 100.0]``; a bad list is a user error naming the option."""
    if text is None:
        return None
    try:
        return [float(part) for part in text.split(",")]
    except ValueError:
        raise GradsweepError(f"{option}: expected comma-separated numbers, got {text!r}") from None


def parse_params(pairs: list[str]) -> dict[str, Any]:
    """``key=value`` pairs; values are read as JSON when they parse, else kept as text."""
    params: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise GradsweepError(f"--param: expected key=value, got {pair!r}")
        try:
            params[key] = json.loads(value)
        except json.JSONDecodeError:
            params[key] = value
    return params


@app.command()
@user_errors
def train(
    problem: Annotated[str, typer.Option(help="toy, or package.module:callable")] = "toy",
    tasks: Annotated[int, typer.Option(help="number of tasks (toy)")] = 2,
    sigmas: Annotated[str | None, typer.Option(help="toy task scales, e.g. 1,100")] = None,
    balancer: Annotated[str, typer.Option(help="static or gradnorm")] = "gradnorm",
    weights: Annotated[str | None, typer.Option(help="static weights, e.g. 1,1")] = None,
    alpha: Annotated[float | None, typer.Option(help="GradNorm alpha")] = None,
    lr: Annotated[float, typer.Option(help="GradNorm's learning rate for w")] = 0.025,
    initial_loss: Annotated[
        str, typer.Option(help="first_batch, theoretical or first_epoch_mean")
    ] = "first_batch",
    steps: Annotated[int, typer.Option(help="training steps")] = 2000,
    seed: Annotated[int, typer.Option(help="initialisation and batch-order seed")] = 0,
    param: Annotated[
        list[str] | None, typer.Option(help="extra problem parameter key=value (repeatable)")
    ] = None,
    device: Annotated[str | None, typer.Option(help="cpu or cuda (default: cuda if any)")] = None,
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
        steps=steps,
        seed=seed,
        device=device,
    )
    result = run_single(run, progress=not as_json)
    if as_json:
        typer.echo(json.dumps(summary(result), indent=2))
    else:
        print_summary(result)
    if result.status != "completed":
        raise typer.Exit(1)


def main() -> None:
    app()


if __name__ == "__main__":
    sys.exit(main())
