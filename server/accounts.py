"""Login, logout, identity and self-service API tokens.

- ``/login``: GET shows a form; POST takes ``username`` and ``password`` and answers with a session
  cookie.  A browser form carries a CSRF token (double-submit cookie before login); a client
  without a browser (``ivoa_cookie`` with ``tls-with-password``, IVOA "Authentication in the
  VO" section 3.3) posts the two fields alone and gets ``200 OK`` with the cookie.  IRSA's
  sign-on fields are accepted too, for scripts written for IRSA (ztfquery): ``josso_username``
  and ``josso_password`` in the POST, or a GET with
  ``?josso_cmd=login&josso_username=..&josso_password=..`` (IRSA's ZTF API page,
  https://irsa.ipac.caltech.edu/docs/program_interface/ztf_api.html, Access Control); the
  access log shows such a password as ``***`` (server/http/access_log.py).
- ``/logout`` (POST, with the session's CSRF token) revokes the session.
- ``/auth/whoami``: who the service thinks you are, as JSON.
- ``/auth/challenge``: 401 with challenges until credentials are presented (a login for
  clients that authenticate only when challenged).
- ``/auth/tokens``: list (GET) and create (POST) your API tokens; ``/auth/tokens/<id>``
  DELETE (or POST ``/auth/tokens/<id>/revoke``) revokes one.
"""

from __future__ import annotations

import hmac
import secrets
import unicodedata
from datetime import timedelta
from html import escape
from urllib.parse import quote, urlsplit

from flask import Blueprint, Response, jsonify, redirect, request

from skyvault.accounts.model import (
    DEFAULT_TOKEN_LIFETIME,
    SESSION_LIFETIME,
    InvalidCredentials,
    create_session,
    create_token_for,
    csrf_token_for,
    list_tokens,
    revoke_permit,
    revoke_token,
)
from skyvault.accounts.throttle import TooManyFailures, authenticate_login
from skyvault.db import database
from skyvault.server.auth import (
    CSRF_FIELD,
    SESSION_COOKIE,
    client_address,
    current_requester,
    current_session_permit,
    too_many_failures,
    unauthorized,
)

blueprint = Blueprint("accounts", __name__)

LOGIN_CSRF_COOKIE = "skyvault_login_csrf"
MAX_TOKEN_DAYS = 366


def _same_origin() -> bool:
    """False when a browser says the request comes from another site."""
    origin = request.headers.get("Origin")
    return origin is None or urlsplit(origin).netloc == request.host


def _secure() -> bool:
    """Cookies only over HTTPS when the service is reached by HTTPS, even behind a proxy that
    speaks plain HTTP to it (SKYVAULT_BASE_URL says how users reach it)."""
    from skyvault.config import settings

    return request.is_secure or (settings().base_url or "").startswith("https://")


def _safe_next(value: str | None) -> str:
    """Where to go after signing in: a path on this site, else ``/``.

    Only local paths, or the login page would be a phishing relay. Browsers (WHATWG URL) and
    Werkzeug's Location header drop tabs and line breaks inside a URL and read ``\\`` as ``/``,
    so ``/<tab>/evil.example/`` would arrive as ``//evil.example/``, another site. So the value
    is normalised (NFKC: a full-width solidus is a solidus), every control, format and
    whitespace character is removed, and only then is it checked: one leading ``/``, then no
    ``/`` or ``\\`` right after it and no ``\\`` anywhere. What passes is percent-encoded to
    ASCII, so nothing later rewrites it.
    """
    if not value:
        return "/"
    text = "".join(character for character in unicodedata.normalize("NFKC", value)
                   if unicodedata.category(character)[0] not in "CZ" and not character.isspace())
    if not text.startswith("/") or text.startswith(("//", "/\\")) or "\\" in text:
        return "/"
    location = quote(text, safe="/?#[]@!$&'()*+,;=:%~-._")
    parts = urlsplit(location)
    return location if not parts.scheme and not parts.netloc else "/"


def _login_page(message: str = "", status: int = 200) -> Response:
    session_permit = current_session_permit()
    token = csrf_token_for(session_permit) if session_permit else secrets.token_urlsafe(24)
    requester = current_requester()
    who = (f"<p>Signed in as <strong>{escape(requester.username or '')}</strong>"
           f" (programs {escape(', '.join(map(str, sorted(requester.programs))) or 'none')}).</p>"
           if not requester.is_anonymous else "")
    nxt = escape(_safe_next(request.values.get("next")))
    body = f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>SkyVault: sign in</title></head>
<body><main>
<h1>Sign in to SkyVault</h1>
{who}{f'<p role="alert">{escape(message)}</p>' if message else ''}
<form method="post" action="/login">
  <input type="hidden" name="{CSRF_FIELD}" value="{token}">
  <input type="hidden" name="next" value="{nxt}">
  <p><label>Username <input name="username" autocomplete="username" required></label></p>
  <p><label>Password <input name="password" type="password" autocomplete="current-password"
     required></label></p>
  <p><button type="submit">Sign in</button></p>
</form>
<p>Scripts and VO clients can use HTTP Basic, or an API token
(<code>Authorization: Bearer ...</code>) from <a href="/auth/tokens">/auth/tokens</a>.</p>
</main></body></html>
"""
    response = Response(body, status=status, mimetype="text/html")
    response.headers["Cache-Control"] = "no-store"
    if not session_permit:
        response.set_cookie(LOGIN_CSRF_COOKIE, token, httponly=True, samesite="Strict",
                            secure=_secure(), path="/login")
    return response


@blueprint.get("/login")
def login_form() -> Response:
    if request.args.get("josso_cmd", "").strip().lower() == "login":
        return _irsa_sign_on()
    return _login_page()


def _irsa_sign_on() -> Response:
    """IRSA's sign-on request, ``?josso_cmd=login&josso_username=...&josso_password=...``,
    which ztfquery sends (and IRSA's curl and wget examples): a sign-in without a browser,
    answered like the form-less POST (200 and the session cookie). A browser that a page on
    another site sends here (an image, a link: Sec-Fetch-Site says so) is refused, so no site
    can sign a visitor into an account of its choosing (login CSRF)."""
    if not _same_origin() or request.headers.get("Sec-Fetch-Site") not in (
            None, "same-origin", "none"):
        return Response("Cross-site login refused.\n", status=403, mimetype="text/plain")
    return _sign_in(request.args.get("josso_username", ""),
                    request.args.get("josso_password", ""), browser=False, destination="/")


@blueprint.post("/login")
def login() -> Response:
    presented = request.form.get(CSRF_FIELD)
    browser = request.headers.get("Origin") is not None or presented is not None
    if not _same_origin():
        return Response("Cross-site login refused.\n", status=403, mimetype="text/plain")
    if browser and not current_session_permit():
        # Double submit: the token in the form must be the one the form page set as a cookie,
        # which another site can neither read nor set (login CSRF).
        expected = request.cookies.get(LOGIN_CSRF_COOKIE, "")
        if not presented or not expected or not hmac.compare_digest(presented, expected):
            return _login_page("Your sign-in form expired; please try again.", status=403)
    # IRSA's sign-on form names its fields josso_username and josso_password.
    username = request.form.get("username", request.form.get("josso_username", ""))
    password = request.form.get("password", request.form.get("josso_password", ""))
    # The destination is settled before the session exists: nothing after that may fail.
    return _sign_in(username, password, browser=browser,
                    destination=_safe_next(request.form.get("next")))


def _sign_in(username: str, password: str, *, browser: bool, destination: str) -> Response:
    """Check the password and open a session: a redirect for browsers, 200 otherwise."""
    try:
        requester = authenticate_login(database(), username, password, client_address())
    except InvalidCredentials:
        if browser:
            return _login_page("Wrong username or password.", status=401)
        return unauthorized("Wrong username or password.\n")
    except TooManyFailures as refused:
        if browser:
            response = _login_page(str(refused), status=429)
            response.headers["Retry-After"] = str(refused.retry_after)
            return response
        return too_many_failures(refused)
    with database().app_writing() as connection:
        old = current_session_permit()
        if old:
            revoke_permit(connection, old)
        issued = create_session(connection, requester.user_id)
    if browser:
        response = redirect(destination, code=303)
    else:
        response = Response("OK\n", mimetype="text/plain")
    response.set_cookie(SESSION_COOKIE, issued.token, httponly=True, samesite="Lax",
                        secure=_secure(), path="/",
                        max_age=int(SESSION_LIFETIME.total_seconds()))
    response.delete_cookie(LOGIN_CSRF_COOKIE, path="/login")
    response.headers["X-VO-Authenticated"] = requester.username or ""
    return response


@blueprint.post("/logout")
def logout() -> Response:
    # The before_request hook has already required the session's CSRF token for this POST.
    permit = current_session_permit()
    if permit:
        with database().app_writing() as connection:
            revoke_permit(connection, permit)
    if request.accept_mimetypes.accept_html:
        response = redirect("/", code=303)
    else:
        response = Response("Signed out.\n", mimetype="text/plain")
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response


def _identity() -> dict:
    requester = current_requester()
    if requester.is_anonymous:
        return {"authenticated": False, "username": None, "programs": []}
    return {"authenticated": True, "username": requester.username,
            "programs": sorted(requester.programs), "csrf_token": _csrf_or_none()}


def _csrf_or_none() -> str | None:
    permit = current_session_permit()
    return csrf_token_for(permit) if permit else None


@blueprint.get("/auth/whoami")
def whoami() -> Response:
    return jsonify(_identity())


@blueprint.get("/auth/challenge")
def challenge() -> Response:
    if current_requester().is_anonymous:
        return unauthorized("Please authenticate.\n")
    return jsonify(_identity())


def _require_user() -> Response | None:
    if current_requester().is_anonymous:
        return unauthorized("Sign in to manage API tokens.\n")
    return None


@blueprint.get("/auth/tokens")
def tokens() -> Response:
    if (refusal := _require_user()) is not None:
        return refusal
    with database().app_writing() as connection:
        listed = list_tokens(connection, current_requester().user_id)
    return jsonify(tokens=[token.as_json() for token in listed])


@blueprint.post("/auth/tokens")
def new_token() -> Response:
    if (refusal := _require_user()) is not None:
        return refusal
    label = (request.values.get("label") or "").strip()[:200] or None
    days_text = request.values.get("expires_days")
    try:
        days = int(days_text) if days_text else DEFAULT_TOKEN_LIFETIME.days
    except ValueError:
        days = -1
    if not 1 <= days <= MAX_TOKEN_DAYS:
        return Response(f"expires_days must be an integer from 1 to {MAX_TOKEN_DAYS}.\n",
                        status=400, mimetype="text/plain")
    with database().app_writing() as connection:
        issued = create_token_for(connection, current_requester().user_id, label,
                                  timedelta(days=days))
    response = jsonify(token_id=issued.token_id, token=issued.token,
                       expires_at=issued.expires_at.isoformat() if issued.expires_at else None)
    response.status_code = 201
    return response


@blueprint.route("/auth/tokens/<int:token_id>", methods=["DELETE"])
@blueprint.post("/auth/tokens/<int:token_id>/revoke")
def revoke(token_id: int) -> Response:
    if (refusal := _require_user()) is not None:
        return refusal
    with database().app_writing() as connection:
        done = revoke_token(connection, token_id, user_id=current_requester().user_id)
    if not done:
        # Someone else's token and no token at all look the same.
        return Response("No such token.\n", status=404, mimetype="text/plain")
    return Response(status=204)
