"""VaultInit then VaultReady called directly, in the order and with the inputs VaultBootstrap gives
the engine (components/resources/bootstrap.py, `initialize`; tests/unit/test_bootstrap.py checks
that wiring)."""

from __future__ import annotations

from typing import Any

from components.providers.vault_init import VaultInitProvider, VaultReadyProvider


def ready_props(init_props: dict[str, Any], init_outs: dict[str, Any]) -> dict[str, Any]:
    existing = init_props.get("existing_token")
    return {
        **{k: init_props[k] for k in ("address", "ca_cert_pem", "mode", "threshold", "unseal_addresses",
                                      "expected_peers", "timeout_seconds")},
        "token": existing or init_outs["root_token"],
        "keys": list(init_outs["keys"]),
        "token_encrypted": bool(init_props.get("root_token_pgp_key")) and not existing,
        "keys_encrypted": bool(init_props.get("pgp_keys")),
    }


def init_and_wait(props: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(VaultInit outputs, VaultReady outputs) for one first `pulumi up`."""
    init = VaultInitProvider().create(props).outs
    ready = VaultReadyProvider().create(ready_props(props, init)).outs
    return init, ready
