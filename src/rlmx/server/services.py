"""What the routes share: the store, the live hub, the run manager, the upload store and the
sessions.

The store is SQLite, whose calls block: routes make them in a worker thread, never on the
event loop."""

from __future__ import annotations

from dataclasses import dataclass

from anyio import to_thread
from fastapi import Request

from rlmx.server.config import ServerConfig
from rlmx.server.contexts import ContextBlobs
from rlmx.server.errors import ApiError
from rlmx.server.hub import Hub
from rlmx.server.runs import RunManager
from rlmx.server.sessions import SessionManager
from rlmx.trajectory.store import RunStore
from rlmx.trajectory.summary import RunSummary


@dataclass(slots=True)
class Services:
    config: ServerConfig
    store: RunStore
    hub: Hub
    runs: RunManager
    blobs: ContextBlobs
    sessions: SessionManager

    async def run_or_404(self, run_id: str) -> RunSummary:
        """The run's summary, read in a worker thread; 404 if the store has no such run."""
        summary = (
            await to_thread.run_sync(self.store.get_run, run_id) if len(run_id) <= 64 else None
        )
        if summary is None:
            raise ApiError(404, f"no run {run_id!r}: list runs with GET /v1/runs", param="id")
        return summary

    def run_dict(self, summary: RunSummary) -> dict[str, object]:
        return {**summary.to_dict(), "live": self.runs.is_live(summary.id)}


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found


def require_json(request: Request) -> None:
    media = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if media != "application/json" and not media.endswith("+json"):
        raise ApiError(
            415,
            f"send the body as JSON with 'Content-Type: application/json' (got {media or 'none'})",
        )
