"""A mypy plugin: calling a factory_boy factory gives its model.

factory_boy runs `NumberFactory(...)` through its metaclass's `__call__`, which returns the
created model instance but is unannotated, so mypy types the call as a `NumberFactory`.
For a factory whose base is parametrized with its model (`PlatformFactory[Number]`), this
hook types the call as the model instead. Type checking only: nothing imports it at run
time (pyproject's [tool.mypy] plugins).
"""

from __future__ import annotations

from collections.abc import Callable

from mypy.maptype import map_instance_to_supertype
from mypy.nodes import TypeInfo
from mypy.plugin import FunctionContext, Plugin
from mypy.types import AnyType, Instance, Type, get_proper_type

BASE = "factory.base.BaseFactory"


def _model_of(ctx: FunctionContext) -> Type:
    made = get_proper_type(ctx.default_return_type)
    if not isinstance(made, Instance):
        return ctx.default_return_type
    base = next((info for info in made.type.mro if info.fullname == BASE), None)
    if base is None:
        return ctx.default_return_type
    args = map_instance_to_supertype(made, base).args
    if not args or isinstance(get_proper_type(args[0]), AnyType):
        return ctx.default_return_type
    return args[0]


class FactoryPlugin(Plugin):
    def get_function_hook(self, fullname: str) -> Callable[[FunctionContext], Type] | None:
        symbol = self.lookup_fully_qualified(fullname)
        if symbol is not None and isinstance(symbol.node, TypeInfo) and symbol.node.has_base(BASE):
            return _model_of
        return None


def plugin(version: str) -> type[Plugin]:
    return FactoryPlugin
