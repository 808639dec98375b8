"""Access-token signing keys and JWTs in the RFC 9068 profile, with joserfc.

`JWT_PRIVATE_KEYS` holds one or more PEM private keys (or a JWK set): the first signs, all verify
and are published at /.well-known/jwks.json, so a key can be rotated in before it signs and kept
after it stops signing until the tokens it signed have expired.
"""

from __future__ import annotations

import json
import re
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from joserfc import jwt
from joserfc.errors import JoseError
from joserfc.jwk import ECKey, KeySet, OKPKey
from joserfc.jwt import JWTClaimsRegistry

from backend.core.config import Settings

ACCESS_TOKEN_TYPE = "at+jwt"  # noqa: S105 (a media type, not a secret)
_PEM_BLOCK = re.compile(
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----.+?-----END [A-Z ]*PRIVATE KEY-----", re.S
)
# Algorithms are pinned: a token naming any other (none, HS256, RS256...) is refused unread.
_ALGORITHM_BY_KEY = {"EC": "ES256", "OKP": "EdDSA"}


class InvalidAccessToken(Exception):
    """The bearer token is not one this server issued and would still accept."""


def _import_pem(pem: str) -> ECKey | OKPKey:
    try:
        return ECKey.import_key(pem)
    except (ValueError, JoseError):
        return OKPKey.import_key(pem)


def load_private_keys(raw: str) -> list[ECKey | OKPKey]:
    raw = raw.strip()
    if raw.startswith("{"):
        keys = list(KeySet.import_key_set(json.loads(raw)).keys)
    else:
        keys = [_import_pem(block) for block in _PEM_BLOCK.findall(raw)]
    if not keys:
        raise ValueError("JWT_PRIVATE_KEYS holds no private key")
    for key in keys:
        if key.key_type not in _ALGORITHM_BY_KEY:
            raise ValueError("JWT_PRIVATE_KEYS must hold EC P-256 or Ed25519 keys")
        if not key.kid:
            key.ensure_kid()
    return keys


@dataclass(frozen=True)
class AccessTokenClaims:
    subject: str
    client_id: str
    jwt_id: str
    issued_at: int
    expires_at: int
    tenant_id: uuid.UUID | None
    scope: str
    # The refresh-token family (sign-in session) the token belongs to; None for service clients.
    session_id: str | None = None


class VerifiedTokens:
    """The claims of tokens already verified, until each one's `exp`, at most `capacity` of them.

    A signature check (ES256) costs more than the rest of a cached request's token handling, and
    a client sends the same token for its whole lifetime. The cache holds only what the signature
    and claims checks accepted, keyed by the whole token, so a token differing by one byte is
    verified afresh. Revocation, deactivation and "log out everywhere" are not decided here: the
    access query checks them on every request. The oldest entry goes first when full.
    """

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._claims: OrderedDict[str, AccessTokenClaims] = OrderedDict()

    def get(self, token: str) -> AccessTokenClaims | None:
        claims = self._claims.get(token)
        if claims is not None and time.time() >= claims.expires_at:
            self._claims.pop(token, None)
            return None
        return claims

    def put(self, token: str, claims: AccessTokenClaims) -> None:
        self._claims[token] = claims
        while len(self._claims) > self.capacity:
            self._claims.popitem(last=False)

    def __len__(self) -> int:
        return len(self._claims)


VERIFIED_TOKENS_CAPACITY = 10_000


class KeyRing:
    def __init__(self, settings: Settings) -> None:
        self.keys = load_private_keys(settings.jwt_private_keys_value())
        self.signing_key = self.keys[0]
        self.verification_keys = KeySet(self.keys)
        self.algorithms = sorted({_ALGORITHM_BY_KEY[key.key_type] for key in self.keys})
        self.issuer = settings.issuer
        self.audience = settings.issuer
        self.ttl_seconds = settings.access_token_ttl_seconds
        self.verified = VerifiedTokens(VERIFIED_TOKENS_CAPACITY)
        self._claims_registry = JWTClaimsRegistry(
            leeway=30,
            iss={"essential": True, "value": self.issuer},
            aud={"essential": True, "value": self.audience},
            exp={"essential": True},
            iat={"essential": True},
            sub={"essential": True},
            jti={"essential": True},
            client_id={"essential": True},
        )

    def jwks(self) -> dict[str, Any]:
        public = [
            {**key.as_dict(private=False), "use": "sig", "alg": _ALGORITHM_BY_KEY[key.key_type]}
            for key in self.keys
        ]
        return {"keys": public}

    def issue_access_token(
        self,
        *,
        subject: str,
        client_id: str,
        tenant_id: uuid.UUID | None = None,
        scope: str = "",
        session_id: str | None = None,
        not_before: int = 0,
    ) -> str:
        """Sign an access token. `not_before` raises `iat` to a user's `tokens_valid_after`.

        `iat` has whole seconds, so a token minted in the same second as a "log out everywhere"
        would look older than the cut-off; lifting `iat` to the cut-off keeps it valid.
        """
        now = max(int(time.time()), not_before)
        claims: dict[str, Any] = {
            "iss": self.issuer,
            "sub": subject,
            "aud": self.audience,
            "iat": now,
            "exp": now + self.ttl_seconds,
            "jti": uuid.uuid4().hex,
            "client_id": client_id,
        }
        if tenant_id is not None:
            claims["tid"] = str(tenant_id)
        if scope:
            claims["scope"] = scope
        if session_id is not None:
            claims["sid"] = session_id
        header = {
            "alg": _ALGORITHM_BY_KEY[self.signing_key.key_type],
            "typ": ACCESS_TOKEN_TYPE,
            "kid": self.signing_key.kid,
        }
        return jwt.encode(header, claims, self.signing_key, algorithms=self.algorithms)

    def verify_access_token(self, token: str) -> AccessTokenClaims:
        """The token's claims when this ring signed it and it is still valid; raises otherwise.

        Revocation is the access query's business, not this method's."""
        claims = self.verified.get(token)
        if claims is None:
            claims = self._verify(token)
            self.verified.put(token, claims)
        return claims

    def _verify(self, token: str) -> AccessTokenClaims:
        try:
            decoded = jwt.decode(token, self.verification_keys, algorithms=self.algorithms)
        except (JoseError, ValueError) as exc:
            raise InvalidAccessToken(str(exc)) from exc
        if decoded.header.get("typ") != ACCESS_TOKEN_TYPE:
            raise InvalidAccessToken("not an access token")
        try:
            self._claims_registry.validate(decoded.claims)
            claims = decoded.claims
            tenant_id = uuid.UUID(claims["tid"]) if "tid" in claims else None
            return AccessTokenClaims(
                subject=str(claims["sub"]),
                client_id=str(claims["client_id"]),
                jwt_id=str(claims["jti"]),
                issued_at=int(claims["iat"]),
                expires_at=int(claims["exp"]),
                tenant_id=tenant_id,
                scope=str(claims.get("scope", "")),
                session_id=str(claims["sid"]) if "sid" in claims else None,
            )
        except (JoseError, ValueError, KeyError, TypeError) as exc:
            raise InvalidAccessToken(str(exc)) from exc
