"""The messages the app sends to the screens on its stack. A screen that cares registers a
handler by type (`@on(RunUpdated)`); the others ignore them. They do not bubble: each screen
gets its own copy, and none comes back up to the app."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

if TYPE_CHECKING:
    from tui.core.events import Event
    from tui.state import RunState


class AccountChanged(Message, bubble=False):
    """The app now uses another AWS profile or region: what came from the account is stale."""


class RunUpdated(Message, bubble=False):
    """An import run moved on; `run` has taken `event` in already."""

    def __init__(self, run: RunState, event: Event) -> None:
        super().__init__()
        self.run = run
        self.event = event
