"""The web console of ``mt5gate serve``, at ``/console`` (and ``/``).

Server-rendered pages (Jinja2) with a little JavaScript: htmx refreshes fragments and posts
the controls, lightweight-charts draws the candles and the latency, and the quotes come over
the service's own ``/v1/stream`` WebSocket. Every asset is served by the package (``/static``),
with its license; nothing is fetched from elsewhere.

* :mod:`.access`: sign-in with an API key in an HttpOnly, SameSite=Strict cookie; CSRF tokens.
* :mod:`.api`: the console reads and acts through the service's own API, in process.
* :mod:`.data`: what the pages show, shaped from the API's answers.
* :mod:`.views`: the routes and templates.
"""

from mt5gate.service.console.views import STATIC_DIR, add_console

__all__ = ["STATIC_DIR", "add_console"]
