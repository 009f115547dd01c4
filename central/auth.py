"""Who is asking: a console user (session cookie) or a service with an API token.

    auth = Auth(settings, users)
    @app.get("/x", dependencies=[Depends(auth.require("operator"))])

API tokens (`$ZASTAVA_CENTRAL_TOKENS`) stay what they were for scripts, tests and the demo:
bearer tokens with the admin role. People log in to the console and get a session cookie
(HttpOnly, SameSite=Strict, Secure when `cookie_secure`) that expires after `session_ttl_s`.
A request that changes something with a cookie must also carry `X-Requested-With: zastava`:
a page on another site cannot add that header without a CORS preflight, which central never
grants, so a forged cross-site request is refused even by a browser that sends the cookie.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from central.users import RANK, Users

COOKIE = "zastava_session"
CSRF_HEADER = "x-requested-with"
CSRF_VALUE = "zastava"
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")
_bearer = HTTPBearer(auto_error=False, description="An API token (settings.api_tokens), or log in for a session cookie.")


@dataclass(frozen=True, slots=True)
class Principal:
    name: str
    role: str
    kind: str  # "user" or "token"
    user_id: int | None = None

    def may(self, role: str) -> bool:
        return RANK[self.role] >= RANK[role]


class Auth:
    def __init__(self, tokens: list[str], users: Users):
        self.tokens = [t.encode() for t in tokens]
        self.users = users

    def token_ok(self, given: bytes) -> bool:
        # Every token compared, in constant time each: the answer's timing tells nothing.
        ok = False
        for token in self.tokens:
            ok |= hmac.compare_digest(given, token)
        return bool(given) and ok

    def principal(self, request: Request, credentials: HTTPAuthorizationCredentials | None) -> Principal | None:
        if credentials is not None:
            if self.token_ok(credentials.credentials.encode()):
                return Principal("api-token", "admin", "token")
            return None
        cookie = request.cookies.get(COOKIE)
        if not cookie:
            return None
        user = self.users.session_user(cookie)
        if user is None:
            return None
        if request.method not in SAFE_METHODS and request.headers.get(CSRF_HEADER) != CSRF_VALUE:
            raise HTTPException(403, f"a console request that changes something needs the {CSRF_HEADER} header")
        return Principal(user.username, user.role, "user", user.id)

    def require(self, role: str):
        def dependency(request: Request,
                       credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> Principal:
            who = self.principal(request, credentials)
            if who is None:
                raise HTTPException(401, "log in, or send a valid bearer token", headers={"WWW-Authenticate": "Bearer"})
            if not who.may(role):
                raise HTTPException(403, f"this needs the {role} role; {who.name} is {who.role}")
            return who

        return dependency
