"""A fair admission queue for API requests: bounded concurrency, round-robin between clients.

At most `slots` requests are answered at once (each occupies a worker thread; their generations
join the LLM's running batch between steps, see `assistant.engine`, while retrieval and catalog
answers run beside it), and at most
`per_client` of them belong to one client (API key or IP). Waiting requests are admitted client by
client in turn, first come first served within a client, so one client sending many requests
cannot starve the others. Lives on the event loop: no locks needed.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from assistant.errors import AssistantError


class ServerBusy(AssistantError):
    """Too many requests are waiting; try again shortly."""


class FairQueue:
    """Admission control: `async with queue.slot(client): ...`."""

    def __init__(self, slots: int, max_waiting: int = 64, per_client: int | None = None) -> None:
        self.slots = slots
        self.max_waiting = max_waiting
        self.per_client = min(per_client or slots, slots)
        self.active = 0
        self.waiting = 0
        self._active_by_client: dict[str, int] = {}
        self._queues: OrderedDict[str, deque[asyncio.Future[None]]] = OrderedDict()

    @asynccontextmanager
    async def slot(self, client: str) -> AsyncIterator[None]:
        """Wait for a turn (fairly), hold it for the block, hand it on afterwards."""
        await self.acquire(client)
        try:
            yield
        finally:
            self.release(client)

    async def acquire(self, client: str) -> None:
        """Take a slot now, or wait for this client's turn; ServerBusy when the queue is full."""
        if self._eligible(client) and not self._queues.get(client):
            self._take(client)  # anyone still waiting is held by their own per-client limit
            return
        if self.waiting >= self.max_waiting:
            raise ServerBusy(f"the server is busy ({self.waiting} requests waiting)",
                             hint="Retry in a few seconds.")
        turn: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._queues.setdefault(client, deque()).append(turn)
        self.waiting += 1
        try:
            await turn
        except asyncio.CancelledError:
            if turn.done() and not turn.cancelled():
                self.release(client)  # the slot was handed to us just as we gave up: pass it on
            else:
                self._forget(client, turn)
            raise

    def release(self, client: str) -> None:
        """Free this client's slot and admit the next waiting client in turn."""
        self.active -= 1
        left = self._active_by_client.get(client, 1) - 1
        if left > 0:
            self._active_by_client[client] = left
        else:
            self._active_by_client.pop(client, None)
        self._dispatch()

    def _eligible(self, client: str) -> bool:
        return self.active < self.slots and self._active_by_client.get(client, 0) < self.per_client

    def _take(self, client: str) -> None:
        self.active += 1
        self._active_by_client[client] = self._active_by_client.get(client, 0) + 1

    def _dispatch(self) -> None:
        while self.active < self.slots:
            client = next((c for c in self._queues if self._eligible(c)), None)
            if client is None:
                return
            turns = self._queues[client]
            turn = turns.popleft()
            self.waiting -= 1
            if turns:
                self._queues.move_to_end(client)  # this client's next request waits for the others
            else:
                del self._queues[client]
            if not turn.done():
                self._take(client)
                turn.set_result(None)

    def _forget(self, client: str, turn: asyncio.Future[None]) -> None:
        turns = self._queues.get(client)
        if turns is not None and turn in turns:
            turns.remove(turn)
            self.waiting -= 1
            if not turns:
                del self._queues[client]
