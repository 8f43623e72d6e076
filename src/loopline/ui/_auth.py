"""Who may act: the admin token, a signed session cookie for the browser, CSRF tokens for its forms.

Reading the dashboard needs no token. Actions (promote, roll back, retrain, acknowledge) need the admin token:
scripts send it as ``Authorization: Bearer TOKEN``; a browser signs in once with it and gets a session cookie
(HttpOnly, SameSite=Strict) holding an issue time and an HMAC of it under the token, so the token itself is never
stored in the browser. Every form carries a CSRF token (an HMAC of the session) and every cookie-authenticated
POST must carry it back, from a page of the same origin.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from loopline.ui._page import UIError

if TYPE_CHECKING:
    from starlette.requests import Request

SESSION_COOKIE = "loopline_session"
SESSION_SECONDS = 12 * 3600
"""How long a browser session lasts after signing in."""


class Auth:
    """The admin token's checks; with no token configured every action is refused (403)."""

    def __init__(self, token: str | None, token_name: str = "admin") -> None:
        self.token = token or None
        self.actor = f"ui:token:{token_name}"

    def _sign(self, purpose: str, value: str) -> str:
        assert self.token is not None
        return hmac.new(self.token.encode(), f"{purpose}:{value}".encode(), hashlib.sha256).hexdigest()

    def valid_token(self, given: str) -> bool:
        """Whether ``given`` is the admin token (constant-time compare)."""
        return self.token is not None and hmac.compare_digest(given.encode(), self.token.encode())

    def new_session(self, now: float | None = None) -> str:
        """A session cookie value for a browser that just gave the right token."""
        issued = str(int(now if now is not None else time.time()))
        return f"{issued}.{self._sign('session', issued)}"

    def session(self, request: Request) -> str | None:
        """The request's valid session cookie, or None (absent, forged, expired, or no token configured)."""
        value = request.cookies.get(SESSION_COOKIE)
        if self.token is None or not value or "." not in value:
            return None
        issued, signature = value.split(".", 1)
        if not issued.isdigit() or not hmac.compare_digest(signature, self._sign("session", issued)):
            return None
        age = time.time() - int(issued)
        return value if 0 <= age <= SESSION_SECONDS else None

    def csrf(self, session: str | None) -> str | None:
        """The CSRF token the forms of ``session`` carry."""
        return None if session is None or self.token is None else self._sign("csrf", session)[:40]

    def authorize(self, request: Request, form_csrf: str | None) -> None:
        """Let an action through, or raise a 401/403 :class:`UIError` saying how to sign in.

        A bearer token needs nothing else; a session cookie needs the form's CSRF token and, when the browser
        says where the request came from (Origin or Referer), that it came from this host."""
        if self.token is None:
            raise UIError(
                403,
                "actions are disabled: no admin token is configured.",
                hint="Start the dashboard with LOOPLINE_TOKEN set.",
            )
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and given.strip():
            if not self.valid_token(given.strip()):
                raise UIError(403, "this token may not perform dashboard actions.")
            return
        session = self.session(request)
        if session is None:
            raise UIError(
                401,
                "sign in with the admin token to perform actions.",
                hint="Open /ui/login, or send `Authorization: Bearer TOKEN`.",
            )
        expected = self.csrf(session)
        if not form_csrf or expected is None or not hmac.compare_digest(form_csrf, expected):
            raise UIError(
                403, "the form's CSRF token is missing or wrong.", hint="Reload the page and submit the form again."
            )
        check_same_origin(request)


def check_same_origin(request: Request) -> None:
    """Refuse a browser request whose Origin (or Referer) names another host than its Host header."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if not source or source == "null":
        return
    if urlsplit(source).netloc != request.headers.get("host", ""):
        raise UIError(403, "the request came from another site.", hint="Submit the form from the dashboard itself.")
