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
        data = json.dumps(cls._whole_numbers(body)).encode() if body is not None else None
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

    @classmethod
    def _whole_numbers(cls, value: Any) -> Any:
        """``value`` with every whole float an int. The engine hands a dynamic provider every number
        as a float (3600 arrives as 3600.0), and Vault refuses "3600.0" for a duration or a count."""
        if isinstance(value, float) and value.is_integer():
            return int(value)
        if isinstance(value, dict):
            return {k: cls._whole_numbers(v) for k, v in value.items()}
        if isinstance(value, list | tuple):
            return [cls._whole_numbers(v) for v in value]
        return value

    @staticmethod
    def _errors(payload: Any) -> str:
        if isinstance(payload, dict) and payload.get("errors"):
            return "; ".join(str(e) for e in payload["errors"])
        return str(payload)

    # --- logging in ---------------------------------------------------------------------------
    #
    # One order, for the program (the Vault provider's token) and for every dynamic provider:
    #   1. VAULT_TOKEN: an operator's explicit choice (`vault login -method=oidc`, or break-glass);
    #   2. in CI, a login to the CI auth method with a GitHub OIDC token minted at this moment
    #      (ACTIONS_ID_TOKEN_REQUEST_URL; TERRAFORM_VAULT_AUTH_JWT when only a token was handed over),
    #      as VAULT_PLATFORM_VAULT_ROLE (deployer, or previewer for previews);
    #   3. the token file this checkout holds for the run (``token_file``: what the program chose, or
    #      the first run's deployer token);
    #   4. the stack's own token (``token``: dev's root token, secrets.vaultToken).
    # Nothing here is kept in the state: props name a file, never a token of a later run.

    @staticmethod
    def _github_oidc_token(audience: str) -> str:
        """A GitHub Actions OIDC token for ``audience``, minted now when the job may request one (a
        token handed over in TERRAFORM_VAULT_AUTH_JWT lives 5 minutes: too short for a whole run)."""
        import json
        import os
        import urllib.parse
        import urllib.request

        url, bearer = os.environ.get("ACTIONS_ID_TOKEN_REQUEST_URL"), os.environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
        if url and bearer:
            separator = "&" if "?" in url else "?"
            request = urllib.request.Request(f"{url}{separator}audience={urllib.parse.quote(audience)}",
                                             headers={"Authorization": f"bearer {bearer}"})
            # The runner's own token service, named by the runner's environment.
            with urllib.request.urlopen(request, timeout=30) as response:
                return str(json.loads(response.read()).get("value") or "")
        return os.environ.get("TERRAFORM_VAULT_AUTH_JWT") or ""

    @staticmethod
    def _ci_login_available() -> bool:
        import os

        minted = os.environ.get("ACTIONS_ID_TOKEN_REQUEST_URL") and os.environ.get("ACTIONS_ID_TOKEN_REQUEST_TOKEN")
        return bool(minted or os.environ.get("TERRAFORM_VAULT_AUTH_JWT"))

    def _jwt_login(self, props: dict[str, Any], path: str, role: str) -> str:
        try:
            jwt = self._github_oidc_token(str(props.get("login_audience") or "vault"))
        except Exception as exc:
            self._login_problem = f"no OIDC token from the CI runner: {type(exc).__name__}: {exc}"
            return ""
        status, payload = self._call(props, "POST", f"auth/{path}/login", {"role": role, "jwt": jwt})
        if status != 200:
            # Vault's reason (a claim that did not match, an unknown role) says what to fix; it never
            # repeats the token.
            self._login_problem = f"HTTP {status}: {self._errors(payload)}"
            return ""
        return (payload.get("auth") or {}).get("client_token", "")

    @staticmethod
    def _read_token_file(path: str) -> str:
        try:
            with open(path) as handle:
                return handle.read().strip()
        except OSError:
            return ""

    def _login_candidates(self, props: dict[str, Any]) -> list[tuple[str, Any]]:
        """(what, how to get it) in the order above."""
        import os

        found: list[tuple[str, Any]] = []
        if os.environ.get("VAULT_TOKEN"):
            found.append(("VAULT_TOKEN", lambda: os.environ["VAULT_TOKEN"]))
        path = props.get("login_path")
        if path and self._ci_login_available():
            role = os.environ.get("VAULT_PLATFORM_VAULT_ROLE") or "deployer"
            found.append((f"a CI login to auth/{path} as {role}", lambda: self._jwt_login(props, path, role)))
        if props.get("token_file"):
            found.append((f"the token in {props['token_file']}", lambda: self._read_token_file(props["token_file"])))
        if props.get("token"):
            found.append(("the stack's token", lambda: props["token"]))
        return found

    def _credentials(self, props: dict[str, Any]) -> str:
        """The first token of the login order that Vault accepts now."""
        tried = []
        for what, get in self._login_candidates(props):
            self._login_problem = ""
            token = get()
            if token and self._call(props, "GET", "auth/token/lookup-self", token=token)[0] == 200:
                return token
            tried.append(f"{what} ({self._login_problem or ('refused' if token else 'empty')})")
        raise RuntimeError(
            f"no working Vault token for {props.get('address')} (tried: {', '.join(tried) or 'nothing'}). The root "
            "token is revoked after the first deploy: log in (`vault login -method=oidc`) and export VAULT_TOKEN, or "
            "run in the deploy workflow, which logs in with its OIDC token.")
