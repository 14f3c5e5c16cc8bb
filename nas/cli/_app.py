"""The Typer application and the sub-apps that command modules register on.

Command modules must not import ray or torch at module level: the query commands load this
package and must answer fast.  Import heavy things inside the command functions.
"""

from __future__ import annotations

import typer

from nas.cli._help import NasTyper

app = NasTyper(
    name="nas",
    help="Neural-architecture search for sequence models, with learning-curve early stopping.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
db_app = NasTyper(help="Create, upgrade and inspect the study database.", no_args_is_help=True)
bench_app = NasTyper(help="Benchmarks: predictors, stopping policies, engine overhead.",
                        no_args_is_help=True)
pfn_app = NasTyper(help="Train and inspect the PFN learning-curve predictor.",
                      no_args_is_help=True)
spaces_app = NasTyper(help="List and check search spaces and tasks.",
                         invoke_without_command=True)

app.add_typer(db_app, name="db")
app.add_typer(bench_app, name="bench")
app.add_typer(pfn_app, name="pfn")
app.add_typer(spaces_app, name="spaces")


class _State:
    debug = False


state = _State()


@app.callback()
def _root(
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks for every error."),
) -> None:
    state.debug = debug
