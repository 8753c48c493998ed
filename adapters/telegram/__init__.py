"""Telegram adapters: the outbound Notifier port over aiogram."""

from adapters.telegram.notifier import DEFAULT_MODES, AlertMode, TelegramNotifier

__all__ = ["DEFAULT_MODES", "AlertMode", "TelegramNotifier"]
