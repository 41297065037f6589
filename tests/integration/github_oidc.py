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


class GithubActions:
    """GitHub's side of a job's OIDC login, on loopback over HTTPS: the issuer's discovery document and
    keys (what Vault's jwt method fetches from ``oidc_discovery_url``) and the runner's token service
    (``ACTIONS_ID_TOKEN_REQUEST_URL``), which mints a token for the job's claims at each request.

    The job's claims (``repository``, ``ref``, ``environment``) are attributes a test changes between
    runs; ``minted`` counts the tokens handed out.
    """

    REQUEST_BEARER = "runner-request-token"

    def __init__(self, workdir, repository: str, ref: str = "refs/heads/main", environment: str | None = None):
        import http.server
        import ssl
        import threading

        from tests.integration import servers

        self.repository, self.ref, self.environment = repository, ref, environment
        self.lifetime = 300
        self.minted = 0
        self.tls = servers.make_test_tls(workdir / "github-tls")
        self.issuer = GithubIssuer()
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:  # the tests' output stays readable
                return

            def _json(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                from urllib.parse import parse_qs, urlsplit

                url = urlsplit(self.path)
                if url.path == "/.well-known/openid-configuration":
                    self._json(200, outer.discovery())
                elif url.path == "/.well-known/jwks":
                    self._json(200, {"keys": [outer.jwk()]})
                elif url.path == "/token":
                    if self.headers.get("Authorization") != f"bearer {outer.REQUEST_BEARER}":
                        self._json(401, {"message": "bad request token"})
                        return
                    audience = (parse_qs(url.query).get("audience") or ["vault"])[0]
                    outer.minted += 1
                    self._json(200, {"count": 1, "value": outer.token(audience=audience)})
                else:
                    self._json(404, {"message": "not found"})

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.tls.cert, self.tls.key)
        self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
        self.url = f"https://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def discovery(self) -> dict[str, Any]:
        return {"issuer": self.url, "jwks_uri": f"{self.url}/.well-known/jwks",
                "subject_types_supported": ["public", "pairwise"], "response_types_supported": ["id_token"],
                "claims_supported": ["sub", "aud", "exp", "iat", "iss", "jti", "nbf", "ref", "repository",
                                     "environment"],
                "id_token_signing_alg_values_supported": ["RS256"], "scopes_supported": ["openid"]}

    def jwk(self) -> dict[str, Any]:
        numbers = self.issuer.key.public_key().public_numbers()

        def encode(n: int) -> str:
            return _b64(n.to_bytes((n.bit_length() + 7) // 8, "big"))

        return {"kty": "RSA", "use": "sig", "alg": "RS256", "kid": self.issuer.kid, "n": encode(numbers.n),
                "e": encode(numbers.e)}

    def token(self, audience: str = "vault", **claims: Any) -> str:
        """A token as the runner mints it for this job now (``claims`` override the job's)."""
        job = {"repository": self.repository, "ref": self.ref, "environment": self.environment}
        return self.issuer.token(**{**job, **claims}, audience=audience, issuer=self.url, lifetime=self.lifetime)

    def runner_env(self) -> dict[str, str]:
        """What a job with `permissions: id-token: write` finds in its environment."""
        return {"ACTIONS_ID_TOKEN_REQUEST_URL": f"{self.url}/token?api-version=2.0",
                "ACTIONS_ID_TOKEN_REQUEST_TOKEN": self.REQUEST_BEARER}

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
