"""Help that reads like a Unix command's: ``--stack NAME``, ``replay FILE``, flags with no value.

typer labels every parameter with its Python type (``<str>``, ``<bool>`` even on flags such as
``--json`` and ``--help``) and writes a required argument as ``{file}`` in the usage line. Every
``vigil`` command and group is built with the classes below (``cls=``), which show instead:
flags bare, a value as its ``metavar`` or its name in capitals, choices as ``[a|b|c]``, and a
required argument as ``FILE``. Parsing is untouched; only the help text changes.
"""

from __future__ import annotations

from typing import Any

import typer.core as tc


def _name(param: Any) -> str:
    return str(param.metavar or (param.name or "value").upper())


class _Option(tc.TyperOption):
    def display_type_rich(self, ctx: Any) -> str | None:
        if self.is_flag or self.count:
            return None
        if self.metavar is not None:
            return self.metavar
        label = self.display_type(ctx).strip("<>")
        return f"[{label}]" if "|" in label else _name(self)


class _Argument(tc.TyperArgument):
    def display_type_rich(self, ctx: Any) -> str | None:
        return None

    @property
    def display_name_raw(self) -> str:
        return _name(self)

    def _usage_display_name(self) -> str:
        name = _name(self) + ("..." if self.nargs != 1 else "")
        return name if self.required else f"[{name}]"


def _plain(params: list[Any]) -> None:
    for p in params:
        if type(p) is tc.TyperOption:
            p.__class__ = _Option
        elif type(p) is tc.TyperArgument:
            p.__class__ = _Argument


class _PlainHelp:
    """Mixed into typer's command and group: their parameters and help option get plain metavars."""

    params: list[Any]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        _plain(self.params)

    def get_help_option(self, ctx: Any) -> Any:
        option = super().get_help_option(ctx)  # type: ignore[misc]
        _plain([option])
        return option


class Command(_PlainHelp, tc.TyperCommand):
    pass


class Group(_PlainHelp, tc.TyperGroup):
    pass
