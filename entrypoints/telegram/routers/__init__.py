"""The bot's routers, each built fresh by its factory (a router belongs to one dispatcher)."""

from entrypoints.telegram.routers.confirm import confirm_router
from entrypoints.telegram.routers.control import control_router
from entrypoints.telegram.routers.fallback import fallback_router
from entrypoints.telegram.routers.read import read_router

__all__ = ["confirm_router", "control_router", "fallback_router", "read_router"]
