"""DeployIdentity: the logins that replace the root token, and the root token's revocation.

Created once Vault is initialized and unsealed, with the root token the stack just received. Its
create writes the `deployer` and `previewer` policies, enables the CI (jwt) and operator (oidc)
auth methods with their roles, and then, when asked to (`deploy.revokeRootToken`), trades the
root token for a short-lived `deployer` token (`bootstrapTtl`) and revokes the root token. The rest
of the first run configures Vault with that token; later runs log in (CI: the workflow's OIDC
token; people: `vault login -method=oidc`, then VAULT_TOKEN).

Why one resource and not pulumi_vault resources: the CI login must exist before the provider that
logs in with it is configured, and the root token must be revoked only after it exists. Updates
(a changed bound claim, a new policy path) log in like everything else after the first run.
The identity is written before the root token is revoked: if a run dies in between, CI and
operators can still log in; `docs/break-glass.md` covers the case where nobody can.
"""

from __future__ import annotations

from typing import Any

import pulumi
from pulumi.dynamic import CreateResult, DiffResult, ReadResult, Resource, UpdateResult

from components.providers.stored import by_value
from components.providers.vault_http import VaultHttp

SECRET_OUTPUTS = ["token", "client_secrets"]
# What the identity is made of; a change to any of these is an update.
_WATCHED = ("address", "ca_cert_pem", "policies", "auths", "client_secrets", "client_secret_arns")


class DeployIdentityProvider(VaultHttp):
    def create(self, props: dict[str, Any]) -> CreateResult:
        return self._guard(self._create, props)

    def update(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        return self._guard(self._update, olds, news)

    def _create(self, props: dict[str, Any]) -> CreateResult:
        root = props.get("token") or ""
        outs = {**props, "bootstrap_expires_at": 0, "root_token_revoked": False}
        if root and self._call(props, "GET", "auth/token/lookup-self", token=root)[0] == 200:
            self._write(props, root, previous=None)
            if props.get("revoke_root_token"):
                outs.update(self._hand_over(props, root))
            return CreateResult(id_="deploy-identity", outs=outs)
        # The stack's root token no longer works: an earlier run revoked it and died before this
        # resource was recorded, or an operator revoked it. Write the identity as whoever can log in
        # now (an operator's VAULT_TOKEN, CI, the first run's token) and record what happened.
        writer = self._credentials({**props, "token": ""})
        self._write(props, writer, previous=None)
        outs["root_token_revoked"] = bool(root) and self._call(
            props, "GET", "auth/token/lookup-self", token=root)[0] == 403
        return CreateResult(id_="deploy-identity", outs=outs)

    def diff(self, _id: str, olds: dict[str, Any], news: dict[str, Any]) -> DiffResult:
        changed = [k for k in _WATCHED if olds.get(k) != news.get(k)]
        return DiffResult(changes=bool(changed), replaces=[], stables=[], delete_before_replace=False)

    def _update(self, olds: dict[str, Any], news: dict[str, Any]) -> UpdateResult:
        kept = {k: olds.get(k) for k in ("bootstrap_expires_at", "root_token_revoked")}
        token = self._credentials({**news, "token": "" if olds.get("root_token_revoked") else news.get("token")})
        self._write(news, token, previous=olds)
        return UpdateResult(outs={**news, **kept})

    def read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        return self._guard(self._read, id_, props)

    def _read(self, id_: str, props: dict[str, Any]) -> ReadResult:
        """What Vault holds now, so that a refresh shows a hand-made change to the identity (a widened
        policy, a loosened bound claim) as drift. What this login may not read (a deployer reads neither
        its own policy nor the CI login) stays as recorded: the previewer's refresh checks it."""
        token = self._credentials({**props, "token": "" if props.get("root_token_revoked") else props.get("token")})
        outs = dict(props)
        policies = {}
        for name, hcl in sorted((props.get("policies") or {}).items()):
            status, payload = self._call(props, "GET", f"sys/policies/acl/{name}", token=token)
            data = payload.get("data", payload) if isinstance(payload, dict) else {}
            # Gone: recorded as empty, so the next `pulumi up` writes it again (with a break-glass token).
            policies[name] = {200: data.get("policy", "") if status == 200 else "", 404: ""}.get(status, hcl)
        outs["policies"] = policies
        auths = []
        for auth in props.get("auths") or []:
            roles = []
            for role in auth.get("roles") or []:
                status, payload = self._call(props, "GET", f"auth/{auth['path']}/role/{role['name']}", token=token)
                data = payload.get("data", payload) if isinstance(payload, dict) else {}
                if status == 200:
                    roles.append({**role, "payload": {k: self._as_written(v, data.get(k))
                                                      for k, v in role["payload"].items()}})
                else:
                    roles.append({**role, "payload": {}} if status == 404 else role)
            auths.append({**auth, "roles": roles})
        outs["auths"] = auths
        return ReadResult(id_=id_, outs=outs)

    @staticmethod
    def _as_written(written: Any, found: Any) -> Any:
        """``written`` when Vault holds the same value (durations come back as seconds, lists in any
        order), else what Vault holds."""
        if isinstance(written, str) and written.endswith("s") and written[:-1].isdigit():
            same = isinstance(found, int | float) and int(found) == int(written[:-1])
            return written if same else (f"{int(found)}s" if isinstance(found, int | float) else found)

        def normal(value: Any) -> Any:
            if isinstance(value, dict):
                return {k: normal(v) for k, v in sorted(value.items())}
            if isinstance(value, list | tuple):
                return sorted((normal(v) for v in value), key=repr)
            return value

        return written if normal(written) == normal(found) else found

    def delete(self, _id: str, props: dict[str, Any]) -> None:
        # Disabling the CI auth method would revoke the very token running this delete, and lock
        # every later deploy out: leaving the identity in place is the safe side.
        print("warning: DeployIdentity delete leaves the auth methods and policies in Vault; remove them with "
              f"`vault auth disable <path>` ({', '.join(a['path'] for a in props.get('auths') or [])}) "
              "once nothing logs in with them.")

    # -- writing ----------------------------------------------------------------------------

    def _ok(self, props: dict[str, Any], method: str, path: str, body: Any, token: str, what: str) -> Any:
        status, payload = self._call(props, method, path, body, token=token, timeout=30)
        if status == 403:
            raise RuntimeError(
                f"{what}: the deploy identity (its policies, the CI and operator logins) changes with this config, "
                "and a deployer may not change it: an operator applies it with a break-glass token "
                "(`VAULT_TOKEN=<token> make up`, docs/break-glass.md).")
        if status not in (200, 204):
            raise RuntimeError(f"{what}: HTTP {status} on {path}: {self._errors(payload)}")
        return payload

    def _write(self, props: dict[str, Any], token: str, previous: dict[str, Any] | None) -> None:
        for name, hcl in sorted((props.get("policies") or {}).items()):
            if previous is not None and (previous.get("policies") or {}).get(name) == hcl:
                continue
            self._ok(props, "PUT", f"sys/policies/acl/{name}", {"policy": hcl}, token, f"writing policy {name!r}")
        enabled = self._ok(props, "GET", "sys/auth", None, token, "listing auth methods")
        enabled = enabled.get("data", enabled) if isinstance(enabled, dict) else {}
        secrets = props.get("client_secrets") or {}
        old_roles = {a["path"]: {r["name"] for r in a.get("roles") or []} for a in (previous or {}).get("auths") or []}
        for auth in props.get("auths") or []:
            path = auth["path"]
            mounted = enabled.get(f"{path}/")
            if mounted is None:
                self._ok(props, "POST", f"sys/auth/{path}", {"type": auth["type"], "description": auth["description"]},
                         token, f"enabling auth method {path!r}")
            elif mounted.get("type") != auth["type"]:
                raise RuntimeError(f"auth path {path!r} already holds a {mounted.get('type')!r} method, not "
                                   f"{auth['type']!r}: choose another deploy.*.path or disable it by hand")
            config = dict(auth["config"])
            if secrets.get(path):
                config["oidc_client_secret"] = secrets[path]
            if (props.get("client_secret_arns") or {}).get(path):
                config["oidc_client_secret"] = self._read_client_secret(props["client_secret_arns"][path])
            self._ok(props, "POST", f"auth/{path}/config", config, token, f"configuring auth method {path!r}")
            for role in auth.get("roles") or []:
                self._ok(props, "POST", f"auth/{path}/role/{role['name']}", role["payload"], token,
                         f"writing role {role['name']!r} of {path!r}")
            for gone in sorted(old_roles.get(path, set()) - {r["name"] for r in auth.get("roles") or []}):
                self._ok(props, "DELETE", f"auth/{path}/role/{gone}", None, token, f"deleting role {gone!r}")

    @staticmethod
    def _read_client_secret(arn: str) -> str:
        """The OIDC client secret, from AWS Secrets Manager with the runner's credentials: sent to Vault,
        never returned (so never in the state)."""
        import boto3
        import botocore.exceptions

        region = arn.split(":")[3]
        try:
            value = boto3.client("secretsmanager", region_name=region).get_secret_value(SecretId=arn)
        except (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError) as exc:
            raise RuntimeError(f"could not read the OIDC client secret {arn} from AWS Secrets Manager: {exc}. The "
                               "runner's AWS role needs secretsmanager:GetSecretValue on it.") from None
        secret = value.get("SecretString") or ""
        if not secret:
            raise RuntimeError(f"the AWS Secrets Manager secret {arn} holds no SecretString (the OIDC client secret)")
        return secret

    def _hand_over(self, props: dict[str, Any], root: str) -> dict[str, Any]:
        """A short-lived deployer token for the rest of this run, then the root token revoked."""
        import time

        ttl = int(props.get("bootstrap_ttl_seconds") or 3600)
        created = self._ok(props, "POST", "auth/token/create-orphan", {
            "policies": [props["deployer_policy"]], "ttl": f"{ttl}s", "explicit_max_ttl": f"{ttl}s",
            "renewable": False, "display_name": "vault-platform-first-run", "meta": {"purpose": "first deploy"},
        }, root, "creating the first run's deployer token")
        bootstrap = created["auth"]["client_token"]
        status, payload = self._call(props, "GET", "auth/token/lookup-self", token=bootstrap)
        if status != 200 or props["deployer_policy"] not in (payload.get("data") or {}).get("policies", []):
            raise RuntimeError(f"the first run's deployer token does not work (HTTP {status}); the root token was "
                               "kept. Run `pulumi up` again.")
        # Into a file only this user reads, never into the state: the rest of this run uses it.
        self._write_private(props["first_run_file"], bootstrap)
        self._ok(props, "POST", "auth/token/revoke-self", None, root, "revoking the root token")
        status, _ = self._call(props, "GET", "auth/token/lookup-self", token=root)
        if status != 403:
            raise RuntimeError(f"the root token still answers after its revocation (HTTP {status})")
        return {"bootstrap_expires_at": int(time.time()) + ttl, "root_token_revoked": True}

    @staticmethod
    def _write_private(path: str, token: str) -> None:
        import os

        os.makedirs(os.path.dirname(path) or ".", mode=0o700, exist_ok=True)
        tmp = f"{path}.tmp"
        if os.path.exists(tmp):
            os.unlink(tmp)
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(token + "\n")
        os.replace(tmp, path)


_STORED_PROVIDER = by_value(DeployIdentityProvider)


class DeployIdentity(Resource, module="bootstrap", name="DeployIdentity"):
    """Outputs: ``bootstrap_expires_at`` (Unix seconds; 0 unless the root token was revoked) and
    ``root_token_revoked``. The first run's deployer token goes to ``first_run_file`` (mode 0600,
    relative to the project folder), never into the state."""

    bootstrap_expires_at: pulumi.Output[int]
    root_token_revoked: pulumi.Output[bool]

    def __init__(self, name: str, *, address: pulumi.Input[str], ca_cert_pem: pulumi.Input[str],
                 token: pulumi.Input[str], policies: dict[str, str], auths: list[dict[str, Any]],
                 client_secrets: pulumi.Input[dict[str, str]], deployer_policy: str, revoke_root_token: bool,
                 bootstrap_ttl_seconds: int, login_path: str, login_audience: str, first_run_file: str,
                 client_secret_arns: dict[str, str] | None = None, opts: pulumi.ResourceOptions | None = None):
        props = {
            "address": address, "ca_cert_pem": ca_cert_pem, "token": pulumi.Output.secret(token),
            "policies": policies, "auths": auths, "client_secrets": pulumi.Output.secret(client_secrets),
            "deployer_policy": deployer_policy, "revoke_root_token": revoke_root_token,
            "bootstrap_ttl_seconds": bootstrap_ttl_seconds, "login_path": login_path,
            "login_audience": login_audience, "first_run_file": first_run_file,
            "client_secret_arns": client_secret_arns or {},
            # Later runs read the first run's token from here too, while it lives.
            "token_file": first_run_file,
            "bootstrap_expires_at": None, "root_token_revoked": None,
        }
        super().__init__(_STORED_PROVIDER(), name, props, pulumi.ResourceOptions.merge(
            opts, pulumi.ResourceOptions(additional_secret_outputs=SECRET_OUTPUTS)))
