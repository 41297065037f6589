"""VaultInit: a Pulumi dynamic resource that initializes Vault inside `pulumi up`.

Nobody else does this step (not the chart, not the Vault providers), so teams run
`vault operator init` by hand and paste tokens around. Here the root token and key shares only ever
exist as Pulumi secrets (or, with PGP keys, only as ciphertext).

Rules this provider keeps, because getting them wrong loses a Vault:
- It never initializes a Vault that is already initialized, and never forgets a stored token:
  update and refresh keep the token from state.
- Once `sys/init` has answered, nothing may fail the create, or the engine would drop the only copy
  of the root token. Later steps (unsealing, waiting for Raft peers) report their outcome in
  ``status``; a later `pulumi up` finishes them.
- Delete does nothing to Vault.

Pulumi stores the provider in the state (dill) and loads it from there for `pulumi refresh` and
`pulumi destroy`, without running the program. ``VaultInit`` hands Pulumi a copy of the provider
class that dill serializes by value (its code, not a module path), so it loads in any working
directory and in programs that do not have this repository on their path. The provider therefore
uses only the standard library and Pulumi's own dynamic-provider types.
"""

from __future__ import annotations

import types
from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, ResourceProvider, UpdateResult

SECRET_OUTPUTS = ["root_token", "keys", "keys_base64", "existing_token"]
# Inputs whose change needs no call to Vault: they only matter for the next init, which never comes.
_INIT_ONLY = ("shares", "threshold", "pgp_keys", "root_token_pgp_key", "mode")


# The provider raises RuntimeError, not a class of this module: the provider is pickled by value and
# must load in the engine's provider process without importing this project's modules.
VaultInitError = RuntimeError


class VaultInitProvider(ResourceProvider):
    """create/diff/update/read/delete for VaultInit; callable directly in tests."""

    # --- HTTP, standard library only ---------------------------------------------------------

    @staticmethod
    def _ssl_context(props: dict[str, Any]):
        import ssl

        ca = props.get("ca_cert_pem") or ""
        if not str(props.get("address", "")).startswith("https://"):
            return None
        context = ssl.create_default_context(cadata=ca) if ca else ssl.create_default_context()
        return context

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

    def _wait_reachable(self, props: dict[str, Any], address: str | None = None) -> dict[str, Any]:
        """sys/health on one address, until it answers or the timeout passes."""
        import time

        addr = address or props["address"]
        timeout = float(props.get("timeout_seconds", 600))
        deadline = time.monotonic() + timeout
        last = "no answer yet"
        for _ in range(int(timeout) + 10):
            try:
                status, payload = self._call(
                    props, "GET", "sys/health?standbyok=true&sealedcode=200&uninitcode=200&perfstandbyok=true",
                    address=addr, timeout=5)
                if status == 200:
                    return payload
                last = f"HTTP {status}: {self._errors(payload)}"
            except Exception as exc:  # connection refused, TLS errors, DNS: all mean "not yet"
                last = f"{type(exc).__name__}: {exc}"
            if time.monotonic() > deadline:
                break
            time.sleep(1)
        raise RuntimeError(
            f"cannot reach Vault at {addr} within {int(timeout)}s ({last}). Check vault-platform:api.address, "
            "that this machine can reach it (dev: the kind cluster's port mappings; prod: the internal load "
            "balancer from inside the VPC), and that the server certificate is signed by the stack's CA.")

    # --- the steps ------------------------------------------------------------------------------

    @staticmethod
    def _init_address(props: dict[str, Any]) -> str:
        """Shamir: initialize the first pod directly, so the pod unsealed first is the one holding
        the new keyring and the others join it. Auto-unseal: any pod behind the API address."""
        if props.get("mode") == "shamir" and props.get("unseal_addresses"):
            return props["unseal_addresses"][0]
        return props["address"]

    def _init(self, props: dict[str, Any]) -> dict[str, Any]:
        shares, threshold = int(props["shares"]), int(props["threshold"])
        if props["mode"] == "shamir":
            body: dict[str, Any] = {"secret_shares": shares, "secret_threshold": threshold}
            if props.get("pgp_keys"):
                body["pgp_keys"] = list(props["pgp_keys"])
        else:
            body = {"recovery_shares": shares, "recovery_threshold": threshold}
            if props.get("pgp_keys"):
                body["recovery_pgp_keys"] = list(props["pgp_keys"])
        if props.get("root_token_pgp_key"):
            body["root_token_pgp_key"] = props["root_token_pgp_key"]
        status, payload = self._call(props, "PUT", "sys/init", body, timeout=60, address=self._init_address(props))
        if status != 200:
            raise RuntimeError(f"sys/init on {props['address']} failed: HTTP {status}: {self._errors(payload)}")
        if props["mode"] == "shamir":
            keys, keys_b64 = payload.get("keys", []), payload.get("keys_base64", [])
        else:
            keys, keys_b64 = payload.get("recovery_keys", []), payload.get("recovery_keys_base64", [])
        return {"root_token": payload["root_token"], "keys": keys, "keys_base64": keys_b64}

    def _unseal_all(self, props: dict[str, Any], keys: list[str]) -> list[str]:
        """Unseal every address (shamir). Returns the problems left; empty when all are unsealed."""
        import time

        if props["mode"] != "shamir":
            return []
        if props.get("pgp_keys"):
            return ["key shares are PGP-encrypted: unseal the pods with `vault operator unseal` using the "
                    "decrypted shares"]
        addresses = list(props.get("unseal_addresses") or []) or [props["address"]]
        threshold = int(props["threshold"])
        # Round-robin over every pod until all are unsealed: a follower accepts shares only once its
        # retry_join has reached an unsealed leader, so no fixed order works for every cluster.
        pending = dict.fromkeys(addresses, "no answer")
        deadline = time.monotonic() + float(props.get("timeout_seconds", 600))
        for _ in range(1000):
            for addr in list(pending):
                try:
                    status, seal = self._call(props, "GET", "sys/seal-status", address=addr, timeout=5)
                    if status == 200 and seal.get("sealed") is False:
                        del pending[addr]
                        continue
                    # Each attempt starts from no progress, so a half-finished earlier attempt cannot
                    # make Vault refuse a share it has already seen.
                    self._call(props, "PUT", "sys/unseal", {"reset": True}, address=addr, timeout=30)
                    for key in keys[:threshold]:
                        status, seal = self._call(props, "PUT", "sys/unseal", {"key": key}, address=addr, timeout=30)
                        if status != 200:
                            pending[addr] = f"HTTP {status}: {self._errors(seal)}"
                            break
                        if seal.get("sealed") is False:
                            del pending[addr]
                            break
                except Exception as exc:
                    pending[addr] = f"{type(exc).__name__}: {exc}"
            if not pending or time.monotonic() > deadline:
                break
            time.sleep(2)
        return [f"{addr} is still sealed ({last})" for addr, last in pending.items()]

    def _wait_peers(self, props: dict[str, Any], token: str) -> list[str]:
        import time

        expected = int(props.get("expected_peers") or 1)
        deadline = time.monotonic() + float(props.get("timeout_seconds", 600))
        seen: list[str] = []
        last = ""
        for _ in range(600):
            try:
                status, payload = self._call(props, "GET", "sys/storage/raft/configuration", token=token, timeout=10)
                if status == 200:
                    servers = payload.get("data", {}).get("config", {}).get("servers", [])
                    # New members join as non-voters; autopilot promotes them once stable. Until
                    # then losing the leader could cost the quorum, so wait for voters.
                    seen = [s.get("node_id", "?") for s in servers if s.get("voter")]
                    if len(seen) == expected:
                        return []
                else:
                    last = f"HTTP {status}: {self._errors(payload)}"
            except Exception as exc:
                last = f"{type(exc).__name__}: {exc}"
            if time.monotonic() > deadline:
                break
            time.sleep(2)
        return [f"{len(seen)} of {expected} Raft members joined as voters ({', '.join(seen) or last or 'none'})"]

    def _finish(self, props: dict[str, Any], token: str, keys: list[str]) -> str:
        problems = self._unseal_all(props, keys)
        if not problems and props.get("root_token_pgp_key") and not props.get("existing_token"):
            return "initialized; the root token is PGP-encrypted, so Raft membership was not checked"
        if not problems:
            problems = self._wait_peers(props, token)
        if problems and problems[0].startswith("key shares are PGP-encrypted"):
            return "initialized; " + problems[0]
        return "ready" if not problems else "incomplete: " + "; ".join(problems)

    def _usable_token(self, props: dict[str, Any], olds: dict[str, Any] | None) -> str:
        return (props.get("existing_token") or (olds or {}).get("root_token") or "")

    # --- the provider interface ---------------------------------------------------------------

    def create(self, props: dict[str, Any]) -> CreateResult:
        self._wait_reachable(props)
        if self._init_address(props) != props["address"]:
            self._wait_reachable(props, self._init_address(props))
        status, state = self._call(props, "GET", "sys/init", address=self._init_address(props))
        if status != 200:
            raise RuntimeError(f"sys/init on {props['address']}: HTTP {status}: {self._errors(state)}")
        if state.get("initialized"):
            token = props.get("existing_token") or ""
            if not token:
                raise RuntimeError(
                    f"Vault at {props['address']} is already initialized, and this stack holds no token for it. "
                    "Give the stack a token with `pulumi config set --secret --path secrets.vaultToken <token>` "
                    "(an admin or root token; lost it? see docs/bootstrap-and-recovery.md, generate-root), then "
                    "run `pulumi up` again. The stack never re-initializes a Vault.")
            status, payload = self._call(props, "GET", "auth/token/lookup-self", token=token)
            if status != 200:
                raise RuntimeError(f"the token in secrets.vaultToken is not valid on {props['address']}: "
                                     f"HTTP {status}: {self._errors(payload)}")
            outputs = {**props, "root_token": token, "keys": [], "keys_base64": [], "initialized_by_stack": False}
            outputs["status"] = self._finish(props, token, [])
            return CreateResult(id_="vault-init", outs=outputs)
        secrets = self._init(props)
        outputs = {**props, **secrets, "initialized_by_stack": True}
        try:
            outputs["status"] = self._finish(props, self._usable_token(props, secrets), secrets["keys"])
        except Exception as exc:  # never lose the token once init has answered
            outputs["status"] = f"incomplete: {type(exc).__name__}: {exc}"
        return CreateResult(id_="vault-init", outs=outputs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in ("address", "ca_cert_pem", "unseal_addresses", "expected_peers", "existing_token",
                               "timeout_seconds") if olds.get(k) != news.get(k)]
        # "incomplete: ..." is work left for this run; "initialized; ..." is left to operators.
        if str(olds.get("status") or "incomplete").startswith("incomplete"):
            changed.append("status")
        elif news.get("mode") == "shamir":
            # A restarted dev pod comes back sealed: `pulumi up` unseals it again.
            for addr in list(news.get("unseal_addresses") or []) or [news["address"]]:
                try:
                    status, seal = self._call(news, "GET", "sys/seal-status", address=addr, timeout=5)
                    if status == 200 and seal.get("sealed"):
                        changed.append("sealed")
                        break
                except Exception:  # unreachable now: nothing to decide, keep state
                    break
        return DiffResult(changes=bool(changed), replaces=[], stables=["root_token", "keys", "keys_base64"],
                          delete_before_replace=False)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        # What was set at init time stays: changing shares or PGP keys is a rekey, done by operators.
        kept = {k: olds.get(k) for k in (*_INIT_ONLY, "root_token", "keys", "keys_base64", "initialized_by_stack")}
        props = {**news, **kept}
        self._wait_reachable(props)
        status, state = self._call(props, "GET", "sys/init")
        if status == 200 and not state.get("initialized"):
            raise RuntimeError(
                f"Vault at {props['address']} is not initialized, but this stack initialized it before: its Raft "
                "data is gone. Restore a snapshot (docs/backup-and-restore.md) into a fresh init, or, to start "
                "empty, remove the old record with `pulumi state delete` for the VaultInit resource and run "
                "`pulumi up`.")
        token = self._usable_token(props, olds)
        try:
            props["status"] = self._finish(props, token, list(olds.get("keys") or []))
        except Exception as exc:
            props["status"] = f"incomplete: {type(exc).__name__}: {exc}"
        return UpdateResult(outs=props)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        # Refresh keeps what only the state knows (the token, the shares) whatever Vault answers.
        try:
            status, state = self._call(props, "GET", "sys/init", timeout=10)
            if status == 200 and not state.get("initialized"):
                return ReadResult(id_=id_, outs={**props, "status": "incomplete: Vault reports it is not initialized"})
        except Exception:  # unreachable during refresh: what the state holds stays true
            return ReadResult(id_=id_, outs=props)
        return ReadResult(id_=id_, outs=props)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        import sys

        print("warning: VaultInit delete does nothing: Vault stays initialized and its data, root token and "
              "key shares are unaffected", file=sys.stderr)


def _by_value(cls: type) -> type:
    """A copy of ``cls`` (and of its functions) that dill serializes by value.

    dill stores a class or function by reference when it can find that very object again under its
    module and name; the copies are not the objects found there, so dill stores their code instead.
    """

    def relative(code: types.CodeType) -> types.CodeType:
        # The state should not record where the deploying checkout happened to live.
        consts = tuple(relative(c) if isinstance(c, types.CodeType) else c for c in code.co_consts)
        return code.replace(co_filename="components/providers/vault_init.py", co_consts=consts)

    def copy(function: types.FunctionType) -> types.FunctionType:
        clone = types.FunctionType(relative(function.__code__), function.__globals__, function.__name__,
                                   function.__defaults__, function.__closure__)
        clone.__kwdefaults__ = function.__kwdefaults__
        clone.__qualname__ = function.__qualname__
        clone.__doc__ = function.__doc__
        return clone

    namespace: dict[str, Any] = {}
    for key, value in cls.__dict__.items():
        if key in ("__dict__", "__weakref__"):
            continue
        if isinstance(value, staticmethod):
            value = staticmethod(copy(value.__func__))
        elif isinstance(value, classmethod):
            value = classmethod(copy(value.__func__))
        elif isinstance(value, types.FunctionType):
            value = copy(value)
        namespace[key] = value
    return type(cls.__name__, cls.__bases__, namespace)


_STORED_PROVIDER = _by_value(VaultInitProvider)


class VaultInit(Resource):
    """Initializes (and in dev unseals) the Vault behind ``address``. Outputs are secret."""

    root_token: pulumi.Output[str]
    keys: pulumi.Output[list[str]]
    keys_base64: pulumi.Output[list[str]]
    status: pulumi.Output[str]
    initialized_by_stack: pulumi.Output[bool]

    def __init__(self, name: str, *, address: pulumi.Input[str], ca_cert_pem: pulumi.Input[str], mode: str,
                 shares: int, threshold: int, pgp_keys: list[str], root_token_pgp_key: str,
                 unseal_addresses: list[str], expected_peers: int, timeout_seconds: int,
                 existing_token: pulumi.Input[str] | None, opts: pulumi.ResourceOptions | None = None):
        props = {
            "address": address, "ca_cert_pem": ca_cert_pem, "mode": mode, "shares": shares,
            "threshold": threshold, "pgp_keys": pgp_keys, "root_token_pgp_key": root_token_pgp_key,
            "unseal_addresses": unseal_addresses, "expected_peers": expected_peers,
            "timeout_seconds": timeout_seconds,
            "existing_token": pulumi.Output.secret(existing_token) if existing_token is not None else None,
            "root_token": None, "keys": None, "keys_base64": None, "status": None, "initialized_by_stack": None,
        }
        super().__init__(_STORED_PROVIDER(), name, props, pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(additional_secret_outputs=SECRET_OUTPUTS)))
