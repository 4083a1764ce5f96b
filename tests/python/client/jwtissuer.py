"""A JWT issuer for the Python tests, as tests/Broker.Tests/Infrastructure/TestJwtIssuer.cs is for the C# ones:
an RSA key, its JWKS in a file the broker reads (Broker:Auth:Jwt:JwksFile), and RS256 tokens with the
claims the broker checks (iss, aud, sub, exp). Signed with PyJWT (Debian python3-jwt) on cryptography."""

from __future__ import annotations

import json
import pathlib
import time
from typing import Dict, Optional

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

ISSUER = "https://kubernetes.default.svc.test"
AUDIENCE = "secrets-broker"
SUBJECT = "system:serviceaccount:ml:trainer"
KEY_ID = "py-test-key-1"


class JwtIssuer:
    def __init__(self, directory: pathlib.Path) -> None:
        self._key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self._key.public_key()))
        jwk.update({"kid": KEY_ID, "use": "sig", "alg": "RS256"})
        self.jwks_file = directory / "jwks.json"
        self.jwks_file.write_text(json.dumps({"keys": [jwk]}), encoding="utf-8")

    def broker_settings(self) -> Dict[str, str]:
        """Broker environment enabling JWT auth with this issuer; no clock skew, so a token is refused the
        second it expires."""
        return {
            "Broker__Auth__Jwt__Enabled": "true",
            "Broker__Auth__Jwt__Issuer": ISSUER,
            "Broker__Auth__Jwt__Audiences__0": AUDIENCE,
            "Broker__Auth__Jwt__JwksFile": str(self.jwks_file),
            "Broker__Auth__Jwt__ClockSkew": "00:00:00",
        }

    def token(self, lifetime: float, subject: str = SUBJECT, now: Optional[float] = None) -> str:
        """A token valid from now for ``lifetime`` seconds (rounded up to whole seconds, as exp is)."""
        issued = int(now if now is not None else time.time())
        claims = {"iss": ISSUER, "aud": AUDIENCE, "sub": subject, "iat": issued, "nbf": issued - 1, "exp": issued + int(lifetime + 0.999)}
        return jwt.encode(claims, self._key, algorithm="RS256", headers={"kid": KEY_ID})
