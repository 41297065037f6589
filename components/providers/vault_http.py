"""Calling Vault's HTTP API from a dynamic provider, with the standard library only (a provider
stored by value cannot count on anything else being importable)."""

from __future__ import annotations

from typing import Any

from pulumi.dynamic import ResourceProvider


class VaultHttp(ResourceProvider):
    """``props`` carry ``address`` (https URL) and ``ca_cert_pem`` (the CA to verify it with)."""

    def configure(self, req) -> None:
        # Only the engine's provider process calls configure. The dynamic-provider host reports an
        # exception with traceback.format_exc(); without frames that is "RuntimeError: <message>",
        # and every message raised here says what happened and what to do.
        import sys

        sys.tracebacklimit = 0

    def _guard(self, step, *args):
        """Run one provider step; any failure leaves it as a RuntimeError with a one-line message."""
        import re
        import traceback

        try:
            return step(*args)
        except RuntimeError as exc:
            message = re.sub(r"\s+", " ", str(exc)).strip()
            raise RuntimeError(message) from None
        except Exception as exc:  # a defect: keep where it happened, on the same line
            where = traceback.extract_tb(exc.__traceback__)[-1]
            message = re.sub(r"\s+", " ", f"{type(exc).__name__}: {exc}").strip()
            raise RuntimeError(f"{type(self).__name__} failed unexpectedly: {message} "
                               f"({where.filename}:{where.lineno})") from None

    @staticmethod
    def _ssl_context(props: dict[str, Any]):
        import ssl

        if not str(props.get("address", "")).startswith("https://"):
            return None
        ca = props.get("ca_cert_pem") or ""
        return ssl.create_default_context(cadata=ca) if ca else ssl.create_default_context()

    @classmethod
    def _call(cls, props: dict[str, Any], method: str, path: str, body: Any = None, token: str | None = None,
              address: str | None = None, timeout: float = 10.0) -> tuple[int, Any]:
        import json
        import urllib.error
        import urllib.request

        base = (address or props["address"]).rstrip("/")
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(f"{base}/v1/{path.lstrip('/')}", data=data, method=method)
        request.add_header("Content-Type", "application/json")
        if token:
            request.add_header("X-Vault-Token", token)
        context = cls._ssl_context({**props, "address": base})
        try:
            # Only http(s) URLs built from the validated api.address reach here.
            with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
                raw = response.read()
                return response.status, (json.loads(raw) if raw else {})
        except urllib.error.HTTPError as err:
            raw = err.read()
            try:
                payload = json.loads(raw) if raw else {}
            except ValueError:
                payload = {"errors": [raw.decode(errors="replace")]}
            return err.code, payload

    @staticmethod
    def _errors(payload: Any) -> str:
        if isinstance(payload, dict) and payload.get("errors"):
            return "; ".join(str(e) for e in payload["errors"])
        return str(payload)

    def _jwt_login(self, props: dict[str, Any], path: str, role: str, jwt: str) -> str:
        status, payload = self._call(props, "POST", f"auth/{path}/login", {"role": role, "jwt": jwt})
        if status != 200:
            # Vault's reason (a claim that did not match, an unknown role) says what to fix; it never
            # repeats the token.
            self._login_problem = f"HTTP {status}: {self._errors(payload)}"
            return ""
        return (payload.get("auth") or {}).get("client_token", "")

    def _credentials(self, props: dict[str, Any]) -> str:
        """A token that works now: the one the stack holds (the dev root token, or the first run's
        deployer token until it expires), else the caller's VAULT_TOKEN, else a login with the CI
        workflow's OIDC token (TERRAFORM_VAULT_AUTH_JWT, role VAULT_PLATFORM_VAULT_ROLE)."""
        import os
        import time

        candidates: list[tuple[str, Any]] = []
        if props.get("bootstrap_token") and int(props.get("bootstrap_expires_at") or 0) > time.time() + 60:
            candidates.append(("the first run's deployer token", lambda: props["bootstrap_token"]))
        if props.get("token"):
            candidates.append(("the stack's token", lambda: props["token"]))
        if os.environ.get("VAULT_TOKEN"):
            candidates.append(("VAULT_TOKEN", lambda: os.environ["VAULT_TOKEN"]))
        jwt, path = os.environ.get("TERRAFORM_VAULT_AUTH_JWT"), props.get("login_path")
        if jwt and path:
            role = os.environ.get("VAULT_PLATFORM_VAULT_ROLE") or "deployer"
            candidates.append((f"a login to auth/{path} as {role}", lambda: self._jwt_login(props, path, role, jwt)))
        tried = []
        for what, get in candidates:
            self._login_problem = ""
            token = get()
            if token and self._call(props, "GET", "auth/token/lookup-self", token=token)[0] == 200:
                return token
            tried.append(f"{what} ({self._login_problem})" if self._login_problem else what)
        raise RuntimeError(
            f"no working Vault token for {props.get('address')} (tried: {', '.join(tried) or 'nothing'}). The root "
            "token is revoked after the first deploy: log in (`vault login -method=oidc`) and export VAULT_TOKEN, or "
            "run in the deploy workflow, which logs in with its OIDC token.")
