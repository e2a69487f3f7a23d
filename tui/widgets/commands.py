"""Command-palette providers: one for the app's global commands, one that asks the current
screen for its own (each screen lists its commands next to its bindings, as posting does)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

from textual.command import DiscoveryHit, Hit, Hits, Provider

Command = tuple[str, str, Callable[[], object]]  # (name, help, callback; its result unused)


class _Commands(Provider):
    def commands(self) -> list[Command]:  # pragma: no cover - overridden
        return []

    async def discover(self) -> Hits:
        for name, help_text, callback in self.commands():
            yield DiscoveryHit(name, callback, help=help_text)

    async def search(self, query: str) -> Hits:
        matcher = self.matcher(query)
        for name, help_text, callback in self.commands():
            score = matcher.match(name)
            if score > 0:
                yield Hit(score, matcher.highlight(name), partial(callback), help=help_text)


class AppCommands(_Commands):
    def commands(self) -> list[Command]:
        return list(getattr(self.app, "palette_commands", list)())


class ScreenCommands(_Commands):
    def commands(self) -> list[Command]:
        return list(getattr(self.screen, "palette_commands", list)())
