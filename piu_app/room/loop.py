"""waitress's event loop for the room listener: the same handlers, without asking every connection at every turn.

waitress's poll loop (`wasyncore.poll2`) asks each of its connections, at every turn, whether it wants to
read or write. In a workshop each phone keeps a connection open: at 500 phones that is 1 000 Python calls
a turn, and the loop turns two or three times per request (the request arrives, the answer is ready, the
answer is sent): 40 % of the room's CPU at 200 requests a second (bench/RESULTS.md, "Room").

Here a connection waiting for its next request (it wants to read, has nothing to write: the state of
almost all of them) stays registered with the kernel's poll() and is asked again only after it had an
event. Those in the middle of a request (a handful), the listening sockets and the trigger are asked at
every turn, as waitress does; and every connection once a second, so that nothing can be missed for
longer (waitress's maintenance marks idle connections to close without an event).

Why nothing is missed in between: a connection leaves the set asked at every turn only when it is seen
idle; a request thread acts only on a connection with a request in progress (never idle), and queues its
answer before it removes the request (waitress's `HTTPChannel.service`), so an idle connection cannot
have an answer waiting. Windows has no poll(): there the room keeps waitress's select() loop.
"""

from __future__ import annotations

import errno
import select
import time
import types
from collections.abc import MutableMapping
from typing import Any

from waitress import wasyncore
from waitress.channel import HTTPChannel

IDLE = select.POLLIN | select.POLLPRI  # waiting for a request: wants to read, nothing to write
FULL_SCAN_SECONDS = 1.0


def _wants(obj: Any) -> int:
    flags = IDLE if obj.readable() else 0
    if obj.writable() and not obj.accepting:
        flags |= select.POLLOUT
    return flags


class IdleAwarePoll:
    """One poll() object kept across turns, and the connections to ask again at the next turn."""

    def __init__(self) -> None:
        self.poller = select.poll()
        self.registered: dict[int, int] = {}  # fd → the flags poll() watches for it
        self.ask: set[int] = set()  # fds whose wishes may have changed since they were last asked
        self.next_full_scan = 0.0

    def turn(self, timeout: float | None, socket_map: MutableMapping[int, Any]) -> None:
        """One turn of the loop, as `wasyncore.poll2(timeout, socket_map)`."""
        now = time.monotonic()
        if now >= self.next_full_scan:
            self.next_full_scan = now + FULL_SCAN_SECONDS
            asked: Any = list(socket_map)
        else:
            asked = self.ask | (socket_map.keys() - self.registered.keys())
        for fd in self.registered.keys() - socket_map.keys():  # closed since the last turn
            self._set(fd, 0)
            self.ask.discard(fd)
        for fd in asked:
            obj = socket_map.get(fd)
            if obj is None:
                self.ask.discard(fd)
                continue
            flags = _wants(obj)
            self._set(fd, flags)
            if flags == IDLE and isinstance(obj, HTTPChannel):
                self.ask.discard(fd)  # waits for its next request: the kernel will say when it comes
            else:
                self.ask.add(fd)
        try:
            events = self.poller.poll(None if timeout is None else int(timeout * 1000))
        except OSError as err:
            if err.args[0] != errno.EINTR:
                raise
            events = []
        for fd, flags in events:
            obj = socket_map.get(fd)
            if obj is None:
                continue
            self.ask.add(fd)  # what it wants may change with what happens now
            wasyncore.readwrite(obj, flags)

    def _set(self, fd: int, flags: int) -> None:
        before = self.registered.get(fd)
        if before == flags or (before is None and not flags):
            return
        if not flags:
            del self.registered[fd]
            try:
                self.poller.unregister(fd)
            except KeyError:
                pass
            return
        if before is None:
            self.poller.register(fd, flags)
        else:
            self.poller.modify(fd, flags)
        self.registered[fd] = flags


def idle_aware_asyncore() -> types.SimpleNamespace:
    """What a waitress server's `asyncore` attribute needs for `run()`: a `loop` with the idle-aware turn."""
    poll = IdleAwarePoll()

    def loop(timeout: float = 30.0, use_poll: bool = False, map: MutableMapping[int, Any] | None = None,  # noqa: A002
             count: int | None = None) -> None:
        assert map is not None
        while map and (count is None or count > 0):
            poll.turn(timeout, map)
            if count is not None:
                count -= 1

    return types.SimpleNamespace(loop=loop, dispatcher=wasyncore.dispatcher)
