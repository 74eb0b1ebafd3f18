"""The CLI's options: a job's options come from RunConfig's fields (their names, help,
defaults and panels are defined once, in config.py); the rest are shared here.

``@config_options("run")`` adds to a command every RunConfig field of that scope (see
:func:`ocrbatch.config.cli_fields`) as a Typer option, and hands the command the values
as ``options`` (field name -> value); the Tesseract shortcuts (--lang/-l, --psm,
--model, --tessdata) and --engine-opt KEY=VALUE come with the job's options. So a new
job option is one field in RunConfig, and `run`, `submit` and `worker` all carry it.
"""

from __future__ import annotations

import enum
import functools
import inspect
import json
import typing
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import typer

from ..config import TesseractOptions, cli_fields
from ..errors import ConfigError

__all__ = [
    "DbOpt",
    "FailUnderOpt",
    "JobArg",
    "JobPasswordOpt",
    "OutOpt",
    "config_options",
    "parse_opts",
]

F = TypeVar("F", bound=Callable[..., Any])

DbOpt = Annotated[
    str | None,
    typer.Option(
        "--db",
        metavar="URL",
        help="Job store, a SQLAlchemy URL [env OCRBATCH_DB; default: a SQLite file in "
        "~/.local/share/ocrbatch].",
        envvar="OCRBATCH_DB",
        show_envvar=False,
        rich_help_panel="Store",
    ),
]
JobArg = Annotated[str, typer.Argument(metavar="JOB", help="Job id or name.")]
OutOpt = Annotated[
    str | None,
    typer.Option(
        "--out",
        "-o",
        metavar="PATH",
        help="Output folder, or a bucket prefix (s3://bucket/prefix/...) "
        "[default: ./ocrbatch-results/job-ID].",
        rich_help_panel="Output",
    ),
]
FailUnderOpt = Annotated[
    float,
    typer.Option(
        metavar="RATE",
        help="Exit 8 when the share of documents that completed is below RATE (0..1; "
        "1: any failed document).",
        min=0,
        max=1,
        rich_help_panel="Output",
    ),
]
JobPasswordOpt = Annotated[
    str | None,
    typer.Option(
        metavar="TEXT",
        help="User password of encrypted PDFs, for a job that has ended (the store "
        "forgets it then) [env OCRBATCH_PDF_PASSWORD].",
        envvar="OCRBATCH_PDF_PASSWORD",
        show_envvar=False,
    ),
]

_ENGINE = "Engine"
_TESSERACT = TesseractOptions.model_fields
# The Tesseract engine's options the CLI takes by name (see intake.ENGINE_SHORTCUTS).
_SHORTCUTS: dict[str, Any] = {
    "lang": Annotated[
        str | None,
        typer.Option(
            "--lang",
            "-l",
            metavar="LANGS",
            help=f"Tesseract languages, e.g. eng+deu [default: {_TESSERACT['lang'].default}].",
            rich_help_panel=_ENGINE,
        ),
    ],
    "psm": Annotated[
        int | None,
        typer.Option(
            metavar="N",
            help="Tesseract page segmentation mode "
            f"[default: {_TESSERACT['psm'].default}: automatic layout].",
            rich_help_panel=_ENGINE,
        ),
    ],
    "model": Annotated[
        str | None,
        typer.Option(
            metavar="NAME",
            help=f"Tesseract model: fast or standard [default: {_TESSERACT['model'].default}].",
            rich_help_panel=_ENGINE,
        ),
    ],
    "tessdata": Annotated[
        str | None,
        typer.Option(
            metavar="PATH",
            help="Folder with LANG.traineddata files.",
            rich_help_panel=_ENGINE,
        ),
    ],
    "engine_opt": Annotated[
        list[str] | None,
        typer.Option(
            metavar="KEY=VALUE",
            help="An engine option (repeat it for several).",
            rich_help_panel=_ENGINE,
        ),
    ],
}


def parse_opts(pairs: list[str] | None, flag: str = "--engine-opt") -> dict[str, Any]:
    """KEY=VALUE pairs of ``flag`` (values read as JSON where they are)."""
    opts: dict[str, Any] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise ConfigError(f"{flag} takes KEY=VALUE, got {pair!r}")
        try:
            opts[key] = json.loads(value)
        except json.JSONDecodeError:
            opts[key] = value
    return opts


def _choices(name: str, annotation: Any) -> type[enum.Enum] | None:
    """An Enum of a Literal field's values (Typer shows and checks them)."""
    args = [a for a in typing.get_args(annotation) if a is not type(None)]
    if typing.get_origin(annotation) is typing.Literal:
        return enum.Enum(name.title(), {str(v): str(v) for v in args}, type=str)  # type: ignore[return-value]
    return None


def _parameter(name: str, field: Any, cli: dict[str, Any]) -> inspect.Parameter:
    annotation = field.annotation
    default = field.default
    kind = _choices(name, annotation)
    flags = cli["flags"] or [f"--{name.replace('_', '-')}"]
    extra: dict[str, Any] = {}
    if typing.get_origin(annotation) is dict:
        # KEY=VALUE, repeated (parsed in config_options' wrapper)
        annotation, default = list[str] | None, None
        cli = {**cli, "metavar": cli["metavar"] or "KEY=VALUE"}
    elif kind is not None:
        annotation, default = kind, kind(default)
        extra["case_sensitive"] = False
    elif name == "format":
        annotation, default = str, ",".join(default)
    if cli["envvar"]:
        extra.update(envvar=cli["envvar"], show_envvar=False)
    help_ = cli["help"]
    if cli["envvar"]:
        help_ += f" [env {cli['envvar']}]"
    # Limits are checked by RunConfig (one message in the CLI's words, see
    # cli/app.py), not repeated here.
    option = typer.Option(
        *flags,
        metavar=cli["metavar"] or ("" if annotation is bool else None),
        help=help_,
        rich_help_panel=cli["panel"],
        show_default=default is not None and default != "",
        **extra,
    )
    annotated = Annotated[annotation, option]  # type: ignore[valid-type]
    return inspect.Parameter(
        name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotated
    )


PANELS = (
    "Input and pages",
    "Engine",
    "Output",
    "Execution",
    "Queue",
    "Accuracy",
    "Cluster (distributed mode)",
    "Store",
    "Output of the command",
)


def _typer_info(p: inspect.Parameter) -> Any:
    return next((a for a in typing.get_args(p.annotation)[1:]), None)


def _is_argument(p: inspect.Parameter) -> bool:
    return type(_typer_info(p)).__name__ == "ArgumentInfo"


def _panel_rank(p: inspect.Parameter) -> int:
    panel = getattr(_typer_info(p), "rich_help_panel", None)
    return PANELS.index(panel) if panel in PANELS else len(PANELS)


def config_options(command: str) -> Callable[[F], F]:
    """Give ``command`` (run, submit, worker) the RunConfig options of its scope; the
    decorated function receives them as ``options`` (only those given, by field name;
    Enum values as their strings; the engine shortcuts and --engine-opt merged)."""
    fields = cli_fields(command)
    params = [_parameter(name, f, cli) for name, (f, cli) in fields.items()]
    shortcuts = command in ("run", "submit")
    if shortcuts:
        params += [
            inspect.Parameter(n, inspect.Parameter.KEYWORD_ONLY, default=None, annotation=a)
            for n, a in _SHORTCUTS.items()
        ]
    names = [p.name for p in params]
    # Fields of mapping type: --flag KEY=VALUE, repeated.
    pairs = {
        n: (cli["flags"] or [f"--{n.replace('_', '-')}"])[0]
        for n, (f, cli) in fields.items()
        if typing.get_origin(f.annotation) is dict
    }

    def decorate(fn: F) -> F:
        own = inspect.signature(fn, eval_str=True)
        kept = [p for p in own.parameters.values() if p.name != "options"]
        arguments = [p for p in kept if _is_argument(p)]
        rest = [
            p.replace(kind=inspect.Parameter.KEYWORD_ONLY)
            for p in kept + params
            if not _is_argument(p)
        ]
        rest.sort(key=_panel_rank)  # the panels of --help in a reading order

        @functools.wraps(fn)
        def wrapper(**kwargs: Any) -> Any:
            values = {n: kwargs.pop(n) for n in names}
            opts = {k: v.value if isinstance(v, enum.Enum) else v for k, v in values.items()}
            for n, flag in pairs.items():
                opts[n] = parse_opts(opts[n], flag) or None
            if shortcuts:
                engine_opt = parse_opts(opts.pop("engine_opt"))
                if engine_opt:
                    opts["engine_options"] = engine_opt
            return fn(options=opts, **kwargs)

        wrapper.__signature__ = own.replace(parameters=[*arguments, *rest])  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


# Every RunConfig field is an option of some command, or set otherwise (documented here;
# tests/unit/test_cli_options.py checks that this list and RunConfig agree).
NOT_OPTIONS = {"engine_options": "--engine-opt KEY=VALUE and the Tesseract shortcuts"}
