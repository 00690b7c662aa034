"""A fake OIDC issuer (GitHub Actions / GitLab CI style) on 127.0.0.1: discovery, JWKS, and tokens it signs."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.fakes.server import FakeServer


class FakeIssuer(FakeServer):
    """Also GitHub Actions' ID-token request endpoint: `GET /actions-token?audience=…` with
    `Authorization: bearer <ACTIONS_ID_TOKEN_REQUEST_TOKEN>` answers `{"value": <token>}` with `actions_claims`."""

    REQUEST_TOKEN = "actions-request-token"

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.keys: dict[str, rsa.RSAPrivateKey] = {}
        self.jwks_fetches = 0
        self.actions_claims: dict[str, Any] = {}
        self.rotate()
        self.app = Starlette(routes=[Route("/.well-known/openid-configuration", self._discovery),
                                     Route("/jwks", self._jwks), Route("/actions-token", self._actions_token)])
        self.serve(self.app, "fake-oidc")

    @property
    def actions_request_url(self) -> str:
        """ACTIONS_ID_TOKEN_REQUEST_URL: it already has a query, the audience is appended with `&`."""
        return f"{self.base_url}/actions-token?api-version=2.0"

    async def _actions_token(self, request: Request) -> JSONResponse:
        if request.headers.get("authorization", "").lower() != f"bearer {self.REQUEST_TOKEN}":
            return JSONResponse({"message": "bad request token"}, status_code=401)
        audience = request.query_params.get("audience") or "https://github.com/acme"
        return JSONResponse({"value": self.token(aud=audience, **self.actions_claims)})

    @property
    def issuer(self) -> str:
        return self.base_url

    def rotate(self) -> str:
        """A new signing key (published next to the old ones); its kid."""
        with self.lock:
            kid = f"key-{len(self.keys) + 1}"
            self.keys[kid] = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            return kid

    def token(self, *, kid: str | None = None, key: rsa.RSAPrivateKey | None = None, **claims: Any) -> str:
        """An ID token as GitHub Actions makes them; `claims` override (None removes a claim)."""
        with self.lock:
            kid = kid or list(self.keys)[-1]
            signing = key or self.keys[kid]
        now = int(time.time())
        payload = {"iss": self.issuer, "aud": "aqe", "sub": "repo:acme/widgets:ref:refs/heads/main",
                   "repository": "acme/widgets", "ref": "refs/heads/main", "iat": now, "nbf": now, "exp": now + 300}
        payload.update(claims)
        payload = {k: v for k, v in payload.items() if v is not None}
        return jwt.encode(payload, signing, algorithm="RS256", headers={"kid": kid})

    async def _discovery(self, request: Request) -> JSONResponse:
        return JSONResponse({"issuer": self.issuer, "jwks_uri": f"{self.base_url}/jwks",
                             "id_token_signing_alg_values_supported": ["RS256"]})

    async def _jwks(self, request: Request) -> JSONResponse:
        with self.lock:
            self.jwks_fetches += 1
            keys = []
            for kid, private in self.keys.items():
                public = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(private.public_key()))
                keys.append({**public, "kid": kid, "use": "sig", "alg": "RS256"})
        return JSONResponse({"keys": keys})
