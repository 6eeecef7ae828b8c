"""Who is asking, for the request being served.

Authentication (Bearer tokens, HTTP Basic, session cookies) is resolved here once per request,
in a ``before_request`` hook ``install(app)`` adds; every handler obtains its identity through
``current_requester()`` and its database access through ``skyvault.server.http.context.reading()``.

- No credentials: the anonymous public.  Services allow anonymous use (optional authentication
  in the sense of IVOA "Authentication in the VO"), and each VOSI capabilities response tells
  anonymous clients how to log in with ``WWW-Authenticate`` challenges, so TOPCAT and pyvo can.
- Wrong, expired or revoked credentials: 401 with the challenges, never a silent downgrade to
  anonymous, so a client knows its permit no longer works and can prompt.
- A session cookie on a state-changing request must come with the session's CSRF token (form
  field ``csrf_token`` or header ``X-CSRF-Token``); otherwise 403.
- Password guessing is throttled (``skyvault.accounts.throttle``): after too many failures an
  account from one address, or one address altogether, gets 429 with Retry-After for a while.
- Authenticated responses carry ``X-VO-Authenticated`` and are marked private for caches.
- Every service is also reachable under ``/authn`` (``/authn/tap``, ``/authn/files/...``),
  where authentication is mandatory: an anonymous request gets the 401 challenge.  Clients that
  send credentials only when challenged (STILTS with ``star.basicauth.user``, TOPCAT's login
  prompt, any ``java.net.Authenticator``) use these URLs; the URLs services generate inside
  such a request (job locations, access URLs) keep the prefix.
"""

from __future__ import annotations

import base64
import binascii
import hmac
import logging

from flask import Flask, Response, g, has_request_context, request
from werkzeug.middleware.proxy_fix import ProxyFix

from skyvault.access import ANONYMOUS, Requester
from skyvault.accounts.model import InvalidCredentials, authenticate_permit, csrf_token_for
from skyvault.accounts.throttle import TooManyFailures, authenticate_login
from skyvault.config import settings
from skyvault.db import DatabaseUnavailable, database

SESSION_COOKIE = "skyvault_session"
CSRF_HEADER = "X-CSRF-Token"
CSRF_FIELD = "csrf_token"
REALM = "SkyVault"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
BASIC_AA = "ivo://ivoa.net/sso#BasicAA"
TLS_WITH_PASSWORD = "ivo://ivoa.net/sso#tls-with-password"
COOKIE_AA = "ivo://ivoa.net/sso#cookie"
BEARER_TOKEN_AA = "ivo://ivoa.net/sso#OAuth"
"""Bearer tokens (``Authorization: Bearer``, RFC 6750, the OAuth 2.0 way of presenting an
access token). SSO 2.0, the current IVOA standard, defines no other identifier for them; the
``#token`` of the SSO drafts is unknown to SSO 2.0 (taplint W-CAP-CPSM) and to pyvo 1.10,
which recognises only anonymous, BasicAA, tls-with-certificate and cookie and lets a client
attach any other method to a session by its identifier (``credentials.set``)."""
SECURITY_METHODS: tuple[str | None, ...] = (None, BASIC_AA, BEARER_TOKEN_AA, COOKIE_AA)
"""What every service endpoint accepts on the same URL: anonymous use (None) or any of the
authentication methods above (TAP 1.1 section 2: the methods co-exist on one access URL)."""

AUTHENTICATED_PREFIX = "/authn"
_PREFIX_KEY = "skyvault.authenticated_prefix"

log = logging.getLogger(__name__)


def current_requester() -> Requester:
    """The requester of the current request (anonymous until a credential says otherwise)."""
    return getattr(g, "requester", ANONYMOUS)


def authentication_prefix() -> str:
    """``/authn`` when the request came through the mandatory-authentication prefix, else ""."""
    return request.environ.get(_PREFIX_KEY, "") if has_request_context() else ""


class MandatoryAuthenticationPrefix:
    """WSGI middleware: ``/authn/<path>`` is ``/<path>`` with authentication required."""

    def __init__(self, wsgi_app) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        if path == AUTHENTICATED_PREFIX or path.startswith(AUTHENTICATED_PREFIX + "/"):
            environ["PATH_INFO"] = path[len(AUTHENTICATED_PREFIX):] or "/"
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + AUTHENTICATED_PREFIX
            environ[_PREFIX_KEY] = AUTHENTICATED_PREFIX
        return self.wsgi_app(environ, start_response)


def current_session_permit() -> str | None:
    """The session permit the request came with, when it authenticated by cookie."""
    return getattr(g, "session_permit", None)


def csrf_token() -> str | None:
    """The CSRF token pages put in their forms (None without a session)."""
    permit = current_session_permit()
    return csrf_token_for(permit) if permit else None


def _base_url() -> str:
    from skyvault.config import settings

    return (settings().base_url or request.host_url).rstrip("/")


def challenges() -> list[str]:
    """``WWW-Authenticate`` challenges: Basic, Bearer, and how to obtain a session cookie."""
    return [
        f'Basic realm="{REALM}"',
        f'Bearer realm="{REALM}"',
        f'ivoa_cookie standard_id="{TLS_WITH_PASSWORD}", access_url="{_base_url()}/login"',
    ]


def unauthorized(message: str = "Authentication failed or is required.\n",
                 bearer_error: str | None = None) -> Response:
    """401 with every challenge (RFC 9110 section 11.6.1; RFC 6750 section 3 for errors)."""
    response = Response(message, status=401, mimetype="text/plain")
    for challenge in challenges():
        if bearer_error and challenge.startswith("Bearer"):
            challenge += f', error="{bearer_error}"'
        response.headers.add("WWW-Authenticate", challenge)
    return response


def too_many_failures(refused: TooManyFailures) -> Response:
    """429 (RFC 6585 section 4) with the seconds until sign-ins are accepted again."""
    response = Response(f"{refused}\n", status=429, mimetype="text/plain")
    response.headers["Retry-After"] = str(refused.retry_after)
    return response


def client_address() -> str:
    """The client's address: the peer's, or the one a trusted proxy in front of us saw
    (``SKYVAULT_TRUSTED_PROXIES``, applied by ProxyFix in ``install``)."""
    return request.remote_addr or "unknown"


def _forbidden(message: str) -> Response:
    return Response(message, status=403, mimetype="text/plain")


def _basic_credentials(value: str) -> tuple[str, str] | None:
    try:
        decoded = base64.b64decode(value.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        return None
    username, colon, password = decoded.partition(":")
    # A NUL names no user and no password (the database cannot even hold one): wrong
    # credentials, like any other malformed pair.
    return (username, password) if colon and username and "\x00" not in decoded else None


def authenticate() -> Response | None:
    """Resolve the request's credentials into ``g.requester`` (the before_request hook)."""
    g.requester = ANONYMOUS
    g.session_permit = None
    header = request.headers.get("Authorization", "")
    scheme, _, value = header.partition(" ")
    try:
        if header:
            if scheme.lower() == "basic":
                credentials = _basic_credentials(value)
                if credentials is None:
                    raise InvalidCredentials()
                g.requester = authenticate_login(database(), *credentials, client_address())
            elif scheme.lower() == "bearer":
                with database().app_writing() as connection:
                    g.requester = authenticate_permit(connection, value.strip())
            else:
                raise InvalidCredentials()
            return None
        permit = request.cookies.get(SESSION_COOKIE)
        if permit:
            with database().app_writing() as connection:
                try:
                    g.requester = authenticate_permit(connection, permit, kinds=("session",))
                    g.session_permit = permit
                except InvalidCredentials:
                    # A stale cookie is not an attack: browse anonymously and let the page
                    # offer a login again (the cookie is dropped in after_request).
                    g.drop_session_cookie = True
            if g.session_permit and request.method not in SAFE_METHODS \
                    and not _csrf_ok(permit):
                return _forbidden("Missing or invalid CSRF token for this session.\n")
    except InvalidCredentials:
        error = "invalid_token" if scheme.lower() == "bearer" else None
        return unauthorized("Invalid, expired or revoked credentials.\n", bearer_error=error)
    except TooManyFailures as refused:
        return too_many_failures(refused)
    except DatabaseUnavailable:
        from skyvault.server.http.outage import unavailable_response

        log.warning("authentication: database unavailable")
        return unavailable_response()
    if g.requester.is_anonymous and authentication_prefix():
        return unauthorized("Authentication is required under "
                            f"{AUTHENTICATED_PREFIX}/; the same service without it is public.\n")
    return None


def _csrf_ok(permit: str) -> bool:
    presented = request.headers.get(CSRF_HEADER) or request.form.get(CSRF_FIELD) or ""
    return hmac.compare_digest(presented.encode(), csrf_token_for(permit).encode())


def decorate_response(response: Response) -> Response:
    """Identity headers and cache rules on every response (the after_request hook)."""
    requester = current_requester()
    response.vary.update(("Authorization", "Cookie"))
    if not requester.is_anonymous:
        response.headers["X-VO-Authenticated"] = requester.username or str(requester.user_id)
        response.headers["Cache-Control"] = "private, no-store"
    elif (response.status_code == 200 and request.path.endswith("/capabilities")
          and "WWW-Authenticate" not in response.headers):
        # Optional authentication: a 200 with challenges on VOSI capabilities.
        for challenge in challenges():
            response.headers.add("WWW-Authenticate", challenge)
    if getattr(g, "drop_session_cookie", False):
        response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def install(app: Flask) -> None:
    """Resolve credentials before every request of ``app``; idempotent."""
    if app.extensions.get("skyvault.auth"):
        return
    app.extensions["skyvault.auth"] = True
    app.before_request_funcs.setdefault(None, []).insert(0, authenticate)
    app.after_request(decorate_response)
    app.wsgi_app = MandatoryAuthenticationPrefix(app.wsgi_app)
    if settings().trusted_proxies:
        # Behind nginx every peer is the proxy; the client is in X-Forwarded-For, which only
        # the configured number of proxies may set (a client could forge any more).
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=settings().trusted_proxies)
