"""Calling Vault's HTTP API from a dynamic provider, with the standard library only (a provider
stored by value cannot count on anything else being importable)."""

from __future__ import annotations

from typing import Any

from pulumi.dynamic import ResourceProvider


class VaultHttp(ResourceProvider):
    """``props`` carry ``address`` (https URL) and ``ca_cert_pem`` (the CA to verify it with)."""

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
