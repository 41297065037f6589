"""Just enough of the Kubernetes API for Vault's kubernetes auth method, on 127.0.0.1.

It issues service account tokens (RS256 JWTs shaped like projected tokens) and answers TokenReview
for the tokens it issued, and only those: a login works exactly when the real API server would
vouch for the caller. Every test that logs in through Kubernetes auth (applications, the backup
job, ESO and cert-manager roles) uses this one fake.
"""

from __future__ import annotations

import base64
import http.server
import json
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

from tests.integration import servers

TOKEN_REVIEW_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"
# What a pod's default service account token is minted for.
DEFAULT_AUDIENCE = "https://kubernetes.default.svc.cluster.local"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class FakeKubernetes:
    def __init__(self) -> None:
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.issued: dict[str, tuple[str, str, str, tuple[str, ...]]] = {}
        self.reviews: list[dict[str, Any]] = []
        fake = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers.get("Content-Length", "0"))) or b"{}")
                fake.reviews.append({"path": self.path, "body": body})
                if self.path != TOKEN_REVIEW_PATH:
                    self.send_error(404)
                    return
                found = fake.issued.get(body.get("spec", {}).get("token", ""))
                status: dict[str, Any] = {"authenticated": False, "error": "invalid bearer token"}
                if found:
                    ns, sa, uid, token_audiences = found
                    # As the API server does: with audiences in the review, the token must have been
                    # minted for one of them; the answer names the ones that matched.
                    wanted = body["spec"].get("audiences") or []
                    matched = [a for a in token_audiences if a in wanted] if wanted else list(token_audiences)
                    if wanted and not matched:
                        status = {"authenticated": False,
                                  "error": "token audiences are invalid for the target audiences"}
                    else:
                        status = {"authenticated": True, "audiences": matched,
                                  "user": {"username": f"system:serviceaccount:{ns}:{sa}", "uid": uid,
                                           "groups": ["system:serviceaccounts", f"system:serviceaccounts:{ns}"]}}
                out = json.dumps({"apiVersion": "authentication.k8s.io/v1", "kind": "TokenReview",
                                  "status": status}).encode()
                self.send_response(201)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        # Never used to verify anything (the fake speaks plain HTTP on loopback), but OpenBao requires
        # kubernetes_ca_cert whenever disable_local_ca_jwt is true; Vault accepts it as well.
        with tempfile.TemporaryDirectory() as tmp:
            self.ca_pem = Path(servers.make_test_ca(tmp, "fake Kubernetes API CA").cert_path).read_text()

    def token(self, namespace: str, service_account: str, *, register: bool = True,
              audiences: list[str] | None = None) -> str:
        """A service account token for ``namespace/service_account``, minted for ``audiences`` (the
        API server's own audience when None, like a pod's default token); ``register=False`` makes
        one the API server never issued (its TokenReview fails)."""
        audiences = list(audiences) if audiences is not None else [DEFAULT_AUDIENCE]
        uid = str(uuid.uuid4())
        now = int(time.time())
        header = {"alg": "RS256", "kid": "fake", "typ": "JWT"}
        claims: dict[str, Any] = {
            "iss": "https://kubernetes.default.svc.cluster.local",
            "sub": f"system:serviceaccount:{namespace}:{service_account}", "iat": now, "nbf": now,
            "exp": now + 600,
            "kubernetes.io": {"namespace": namespace, "serviceaccount": {"name": service_account, "uid": uid}}}
        claims["aud"] = audiences
        signing_input = f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        jwt = f"{signing_input}.{b64url(signature)}"
        if register:
            self.issued[jwt] = (namespace, service_account, uid, tuple(audiences))
        return jwt

    def auth_config(self) -> dict[str, Any]:
        """The only change to our Kubernetes auth config in tests: Vault is not in a pod, so it cannot
        read its own service account token and CA; it reviews each caller's token with that token
        itself, against this fake."""
        return {"kubernetes_host": self.url, "disable_local_ca_jwt": True, "kubernetes_ca_cert": self.ca_pem}

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(timeout=10)
