"""VaultInit and VaultReady: Pulumi dynamic resources that initialize Vault inside `pulumi up`.

Nobody else does this step (not the chart, not the Vault providers), so teams run
`vault operator init` by hand and paste tokens around. Here the root token and key shares only ever
exist as Pulumi secrets (or, with PGP keys, only as ciphertext).

Two resources, because the engine writes a resource to the state only when its create returns:

- ``VaultInit`` calls `sys/init` and returns as soon as Vault has answered, so the root token and
  the shares are in the state before anything else can go wrong. A run cancelled or killed later,
  while pods are unsealed or Raft members awaited, leaves them recorded.
- ``VaultReady`` depends on it and does the waiting: in dev it unseals every pod with the recorded
  shares, then it waits until every Raft member has joined as a voter. The Vault configuration
  depends on it, so one `pulumi up` still ends with an unsealed, configured Vault. When it cannot
  finish in ``timeout_seconds``, its ``status`` says ``incomplete: ...`` and the next `pulumi up`
  updates it, which does the rest; a run killed in the middle creates it again next time.

Rules these providers keep, because getting them wrong loses a Vault:
- VaultInit never initializes a Vault that is already initialized, and never forgets a stored
  token: update and refresh keep the token from state. Once `sys/init` has answered, create returns.
- VaultReady holds nothing that cannot be recomputed, so it may fail, and be created again.
- Delete does nothing to Vault.
- An error reaches the engine's output as one line that says what to do, not a Python traceback.

Pulumi stores each provider in the state (dill) and loads it from there for `pulumi refresh` and
`pulumi destroy`, without running the program. The resources hand Pulumi copies of the provider
classes that dill serializes by value (their code, not a module path), so they load in any working
directory and in programs that do not have this repository on their path. The providers therefore
use only the standard library and Pulumi's own dynamic-provider types.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, UpdateResult

from components.providers.stored import by_value
from components.providers.vault_http import VaultHttp

SECRET_OUTPUTS = ["root_token", "keys", "keys_base64", "existing_token"]
READY_SECRET_OUTPUTS = ["token", "keys"]
# Inputs whose change needs no call to Vault: they only matter for the next init, which never comes.
_INIT_ONLY = ("shares", "threshold", "pgp_keys", "root_token_pgp_key", "mode")
# VaultReady inputs that change what it has to do.
_READY_INPUTS = ("address", "ca_cert_pem", "mode", "threshold", "unseal_addresses", "expected_peers",
                 "timeout_seconds", "token", "keys", "token_encrypted", "keys_encrypted")


# The providers raise RuntimeError, not a class of this module: they are pickled by value and must
# load in the engine's provider process without importing this project's modules.
VaultInitError = RuntimeError


class _VaultApi(VaultHttp):
    """What both providers share beyond the HTTP calls: waiting for Vault to answer."""

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


class VaultInitProvider(_VaultApi):
    """create/diff/update/read/delete for VaultInit; callable directly in tests."""

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
        # A client timeout after Vault has initialized loses the answer, so wait as long as the stack
        # allows for anything (init.timeout) rather than a fixed minute: with a cloud KMS seal,
        # sys/init makes several calls to the KMS before it answers.
        timeout = max(60.0, float(props.get("timeout_seconds") or 0))
        status, payload = self._call(props, "PUT", "sys/init", body, timeout=timeout,
                                     address=self._init_address(props))
        if status != 200:
            raise RuntimeError(f"sys/init on {props['address']} failed: HTTP {status}: {self._errors(payload)}")
        if props["mode"] == "shamir":
            keys, keys_b64 = payload.get("keys", []), payload.get("keys_base64", [])
        else:
            keys, keys_b64 = payload.get("recovery_keys", []), payload.get("recovery_keys_base64", [])
        return {"root_token": payload["root_token"], "keys": keys, "keys_base64": keys_b64}

    def _check_adopted_token(self, props: dict[str, Any], token: str) -> None:
        address = self._init_address(props)
        status, seal = self._call(props, "GET", "sys/seal-status", address=address)
        if status == 200 and seal.get("sealed"):
            # A sealed Vault answers every token lookup with 503: nothing can be said of the token.
            raise RuntimeError(
                f"Vault at {address} is initialized but sealed, so the token in secrets.vaultToken cannot be "
                "checked (it may well be valid). Unseal it (`vault operator unseal` with the key shares, or let "
                "auto-unseal finish), then run `pulumi up` again.")
        status, payload = self._call(props, "GET", "auth/token/lookup-self", token=token, address=address)
        if status != 200:
            raise RuntimeError(f"the token in secrets.vaultToken is not valid on {props['address']}: "
                               f"HTTP {status}: {self._errors(payload)}. Set a valid one with `pulumi config set "
                               "--secret --path secrets.vaultToken <token>`.")

    # --- the provider interface ---------------------------------------------------------------

    def create(self, props: dict[str, Any]) -> CreateResult:
        return self._guard(self._create, props)

    def _create(self, props: dict[str, Any]) -> CreateResult:
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
                    "A dev stack: give it a token with `pulumi config set --secret --path secrets.vaultToken "
                    "<token>` (an admin or root token; lost it? docs/bootstrap-and-recovery.md, generate-root), then "
                    "run `pulumi up` again. prod holds no token in its config: restore its state from the "
                    "backend's backup (docs/bootstrap-and-recovery.md, 'Lost the state'). The stack never "
                    "re-initializes a Vault.")
            self._check_adopted_token(props, token)
            outputs = {**props, "root_token": token, "keys": [], "keys_base64": [], "initialized_by_stack": False,
                       "status": "adopted"}
            return CreateResult(id_="vault-init", outs=outputs)
        # From here on nothing may fail: this answer is the only copy of the root token and shares.
        secrets = self._init(props)
        return CreateResult(id_="vault-init", outs={**props, **secrets, "initialized_by_stack": True,
                                                    "status": "initialized"})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return self._guard(self._diff, olds, news)

    def _diff(self, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in ("address", "ca_cert_pem", "unseal_addresses", "expected_peers", "existing_token",
                               "timeout_seconds") if olds.get(k) != news.get(k)]
        # States written before VaultReady existed may say "incomplete: ...": update settles them.
        if str(olds.get("status") or "incomplete").startswith("incomplete"):
            changed.append("status")
        elif self._data_gone(news):
            # The engine calls update only for a change, and update is where a Vault that lost its data
            # is refused: without this, `pulumi up` after a wipe went on to VaultReady, which spent its
            # whole timeout unsealing pods that hold nothing, and ended with a warning.
            changed.append("initialized")
        return DiffResult(changes=bool(changed), replaces=[], stables=["root_token", "keys", "keys_base64"],
                          delete_before_replace=False)

    def _data_gone(self, props: dict[str, Any]) -> bool:
        """Vault answers that it is not initialized (its Raft data was lost or wiped)."""
        try:
            status, state = self._call(props, "GET", "sys/init", timeout=5)
        except Exception:  # unreachable now: nothing to decide, the state stays as it is
            return False
        return status == 200 and state.get("initialized") is False

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return self._guard(self._update, olds, news)

    def _update(self, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
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
        props["status"] = "initialized" if props.get("initialized_by_stack") is not False else "adopted"
        return UpdateResult(outs=props)

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return self._guard(self._read, id_, props)

    def _read(self, id_: str, props: dict[str, Any]) -> ReadResult:
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


class VaultReadyProvider(_VaultApi):
    """create/diff/update/read/delete for VaultReady: unseal (Shamir) and wait for the Raft voters."""

    def _unseal_all(self, props: dict[str, Any]) -> list[str]:
        """Unseal every address (shamir). Returns the problems left; empty when all are unsealed."""
        import time

        if props["mode"] != "shamir":
            return []
        keys = list(props.get("keys") or [])
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
                    if not keys:
                        pending[addr] = "sealed, and this stack holds no key shares for it"
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

    def _wait_peers(self, props: dict[str, Any]) -> list[str]:
        import time

        expected = int(props.get("expected_peers") or 1)
        deadline = time.monotonic() + float(props.get("timeout_seconds", 600))
        seen: list[str] = []
        last = ""
        token = props["token"]
        for _ in range(600):
            try:
                status, payload = self._call(props, "GET", "sys/storage/raft/configuration", token=token, timeout=10)
                if status == 403 and token == props["token"]:
                    # The root token is revoked after the first deploy: read as whoever deploys now.
                    token = self._credentials({**props, "token": ""})
                    continue
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

    def _wait_forwarding(self, props: dict[str, Any]) -> list[str]:
        """Every pod passes requests on to the active node. A standby just unsealed is Ready (it is
        unsealed) a moment before it has found the active node, and answers HTTP 500 "active cluster
        node not found" meanwhile; the Vault resources that come next reach pods through a Service."""
        import time

        addresses = list(props.get("unseal_addresses") or []) or [props["address"]]
        deadline = time.monotonic() + float(props.get("timeout_seconds", 600))
        pending = dict.fromkeys(addresses, "no answer")
        for _ in range(1000):
            for addr in list(pending):
                try:
                    # A standby forwards this; 403 (a revoked root token) is the active node's answer too.
                    status, payload = self._call(props, "GET", "auth/token/lookup-self", token=props["token"],
                                                 address=addr, timeout=5)
                    if status in (200, 403):
                        del pending[addr]
                    else:
                        pending[addr] = f"HTTP {status}: {self._errors(payload)}"
                except Exception as exc:
                    pending[addr] = f"{type(exc).__name__}: {exc}"
            if not pending or time.monotonic() > deadline:
                break
            time.sleep(1)
        return [f"{addr} does not reach the active node ({last})" for addr, last in pending.items()]

    def _finish(self, props: dict[str, Any]) -> str:
        if props["mode"] == "shamir" and props.get("keys_encrypted"):
            return ("initialized; key shares are PGP-encrypted: unseal the pods with `vault operator unseal` using "
                    "the decrypted shares")
        try:
            problems = self._unseal_all(props)
            if not problems and props.get("token_encrypted"):
                return "initialized; the root token is PGP-encrypted, so Raft membership was not checked"
            if not problems:
                problems = self._wait_peers(props)
            if not problems:
                problems = self._wait_forwarding(props)
        except Exception as exc:  # what is left is reported, and the next `pulumi up` tries again
            problems = [f"{type(exc).__name__}: {exc}"]
        return "ready" if not problems else "incomplete: " + "; ".join(problems)

    def _sealed_somewhere(self, props: dict[str, Any]) -> bool:
        for addr in list(props.get("unseal_addresses") or []) or [props["address"]]:
            try:
                status, seal = self._call(props, "GET", "sys/seal-status", address=addr, timeout=5)
                if status == 200 and seal.get("sealed"):
                    return True
            except Exception:  # unreachable now: nothing to decide, keep state
                return False
        return False

    # --- the provider interface ---------------------------------------------------------------

    def create(self, props: dict[str, Any]) -> CreateResult:
        return self._guard(self._create, props)

    def _create(self, props: dict[str, Any]) -> CreateResult:
        self._wait_reachable(props)
        return CreateResult(id_="vault-ready", outs={**props, "status": self._finish(props)})

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        return self._guard(self._diff, olds, news)

    def _diff(self, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in _READY_INPUTS if olds.get(k) != news.get(k)]
        # "incomplete: ..." is work left for this run; "initialized; ..." is left to operators.
        if str(olds.get("status") or "incomplete").startswith("incomplete"):
            changed.append("status")
        elif news.get("mode") == "shamir" and not news.get("keys_encrypted") and self._sealed_somewhere(news):
            # A restarted dev pod comes back sealed: `pulumi up` unseals it again.
            changed.append("sealed")
        return DiffResult(changes=bool(changed), replaces=[], stables=[], delete_before_replace=False)

    def update(self, _id: str, _olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return self._guard(self._update, news)

    def _update(self, news: dict[str, Any]) -> UpdateResult:
        self._wait_reachable(news)
        return UpdateResult(outs={**news, "status": self._finish(news)})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        # Refresh keeps the recorded outcome: the next `pulumi up` compares it with Vault.
        return ReadResult(id_=id_, outs=props)

    def delete(self, _id: str, _props: dict[str, Any]) -> None:
        return None


_STORED_PROVIDER = by_value(VaultInitProvider)
_STORED_READY_PROVIDER = by_value(VaultReadyProvider)


class VaultInit(Resource):
    """Initializes the Vault behind ``address`` (or adopts ``existing_token``). Outputs are secret.

    Its type stays ``pulumi-python:dynamic:Resource``: deployed stacks know it by that URN.
    """

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


class VaultReady(Resource, module="bootstrap", name="VaultReady"):
    """Unseals (Shamir) and waits for every Raft voter, after VaultInit has recorded the token.

    ``token`` is the token to read the Raft configuration with and ``keys`` the shares to unseal
    with; ``token_encrypted``/``keys_encrypted`` say they are PGP ciphertext the stack cannot use.
    """

    status: pulumi.Output[str]

    def __init__(self, name: str, *, address: pulumi.Input[str], ca_cert_pem: pulumi.Input[str], mode: str,
                 threshold: int, unseal_addresses: list[str], expected_peers: int, timeout_seconds: int,
                 token: pulumi.Input[str], keys: pulumi.Input[list[str]], token_encrypted: bool,
                 keys_encrypted: bool, opts: pulumi.ResourceOptions | None = None):
        props = {
            "address": address, "ca_cert_pem": ca_cert_pem, "mode": mode, "threshold": threshold,
            "unseal_addresses": unseal_addresses, "expected_peers": expected_peers,
            "timeout_seconds": timeout_seconds, "token": pulumi.Output.secret(token),
            "keys": pulumi.Output.secret(keys), "token_encrypted": token_encrypted,
            "keys_encrypted": keys_encrypted, "status": None,
        }
        super().__init__(_STORED_READY_PROVIDER(), name, props, pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(additional_secret_outputs=READY_SECRET_OUTPUTS)))
