"""Sessions: several questions over one context with one REPL, durable by name."""

from rlmx.sessions.session import Exchange, Session, SessionPolicy

__all__ = ["Exchange", "Session", "SessionPolicy"]
