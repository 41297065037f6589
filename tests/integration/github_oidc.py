"""Tokens shaped like GitHub Actions' OIDC tokens, signed with a key of the test's own.

Vault cannot reach token.actions.githubusercontent.com from here, so the auth method is given the
public key (``jwt_validation_pubkeys``) instead of the discovery URL; everything else it checks
(issuer, audience, bound claims, lifetime, signature) is exactly what it checks in CI.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from components.render.deploy_identity import GITHUB_ISSUER


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class GithubIssuer:
    """Signs GitHub-shaped tokens; ``public_pem`` is what Vault validates them with."""

    key: rsa.RSAPrivateKey = field(default_factory=lambda: rsa.generate_private_key(public_exponent=65537,
                                                                                    key_size=2048))
    kid: str = field(default_factory=lambda: uuid.uuid4().hex)

    @property
    def public_pem(self) -> str:
        return self.key.public_key().public_bytes(serialization.Encoding.PEM,
                                                  serialization.PublicFormat.SubjectPublicKeyInfo).decode()

    def jwt_config(self) -> dict[str, Any]:
        return {"jwt_validation_pubkeys": [self.public_pem]}

    def token(self, *, repository: str, ref: str = "refs/heads/main", environment: str | None = None,
              audience: str = "vault", issuer: str = GITHUB_ISSUER, lifetime: int = 300,
              issued_ago: int = 0, **extra: Any) -> str:
        now = int(time.time()) - issued_ago
        owner = repository.split("/")[0]
        subject = f"repo:{repository}:" + (f"environment:{environment}" if environment else f"ref:{ref}")
        claims = {
            "jti": str(uuid.uuid4()), "sub": subject, "aud": audience, "iss": issuer,
            "iat": now, "nbf": now - 5, "exp": now + lifetime,
            "repository": repository, "repository_owner": owner, "ref": ref, "ref_type": "branch",
            "event_name": "push", "workflow": "deploy", "actor": "someone", "run_id": "1", **extra,
        }
        if environment:
            claims["environment"] = environment
        header = {"alg": "RS256", "typ": "JWT", "kid": self.kid}
        signing_input = f"{_b64(json.dumps(header).encode())}.{_b64(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{_b64(signature)}"
