"""A typer command whose plain options are read without pydantic: `list` starts within 0.3 s.

typer (0.29) coerces every non-flag parameter through a pydantic TypeAdapter, and importing pydantic and
building the adapters costs ~0.1 s. LeanCommand's parameters take the values that need no judging as they
are: None, a str for a str option, a whole number in range for an int option (what the adapter returns for
them). Any other value goes to typer's own coercion, so every usage error is still typer's word for word.
tests/test_list_fast_path.py checks both: `list` imports no pydantic, and a bad --limit reads as before.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from typer._click import Context, Parameter
from typer._coercion import RuntimeParam, build_runtime_param
from typer.core import TyperCommand, TyperGroup, TyperOption, _TyperParameter


@dataclass(frozen=True)
class _PlainValues(RuntimeParam):
    """Values that need no judging pass through; anything else gets typer's (pydantic) coercion."""

    def coerce(self, value: Any, param: _TyperParameter, ctx: Context) -> Any:
        if not (param.multiple or param.nargs != 1) and self._plain(value):
            return int(value) if self.annotation is int and isinstance(value, str) else value
        return build_runtime_param(param.type_descriptor).coerce(value, param=param, ctx=ctx)

    def _coerce_value(self, value: Any, param: _TyperParameter, ctx: Context) -> Any:  # noqa: ARG002
        raise AssertionError("coerce() does not call it")  # pragma: no cover

    def _plain(self, value: Any) -> bool:
        if value is None:
            return True
        if self.annotation is str or self.annotation is bool:
            return isinstance(value, self.annotation)
        if self.annotation is int and not self.parameter_info.clamp:
            number = value if type(value) is int else (int(value) if isinstance(value, str) and value.isascii()
                                                       and value.isdigit() else None)
            low, high = self.parameter_info.min, self.parameter_info.max
            return number is not None and (low is None or number >= low) and (high is None or number <= high)
        return False


def _lean(param: Parameter | None) -> None:
    if isinstance(param, _TyperParameter) and param._runtime_param is None \
            and param.type_descriptor.annotation in (str, int, bool):
        param._runtime_param = _PlainValues(parameter_info=param.type_descriptor.parameter_info,
                                            annotation=param.type_descriptor.annotation)


class LeanCommand(TyperCommand):
    """`@app.command(cls=LeanCommand)`: the command's str, int and flag options skip pydantic for plain values."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        for param in self.params:
            _lean(param)

    def get_help_option(self, ctx: Context) -> TyperOption | None:
        option = super().get_help_option(ctx)  # made on first use, and also coerced when not given
        _lean(option)
        return option


class LeanGroup(TyperGroup):
    """`typer.Typer(cls=LeanGroup)`: the group's own --help option skips pydantic too."""

    def get_help_option(self, ctx: Context) -> TyperOption | None:
        option = super().get_help_option(ctx)
        _lean(option)
        return option
