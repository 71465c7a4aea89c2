"""The HTTP service: a JSON API for runs and contexts, live event streams, an
OpenAI-compatible endpoint, and the web viewer. Needs the ``server`` extra
(``pip install 'rlmx[server]'``)."""

from rlmx.server.app import create_app
from rlmx.server.config import ServerConfig, check_bind
from rlmx.server.handle import ServerHandle, serve

__all__ = ["ServerConfig", "ServerHandle", "check_bind", "create_app", "serve"]
