"""What the mocked providers answer: outputs a real provider would compute.

Every value that would be secret in a real deployment (private keys, generated passwords, the root
token) carries the marker CANARY, so the canary scan can prove it never travels unmarked.
"""

from __future__ import annotations

from typing import Any

CANARY = "CANARY"
ACCOUNT = "123456789012"


def _pem(kind: str, body: str) -> str:
    return f"-----BEGIN {kind}-----\n{body}\n-----END {kind}-----\n"


def fake_outputs(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    if typ == "tls:index/privateKey:PrivateKey":
        return {"privateKeyPem": _pem("PRIVATE KEY", f"FAKE-{CANARY}-KEY-{name}"),
                "privateKeyPemPkcs8": _pem("PRIVATE KEY", f"FAKE-{CANARY}-KEY8-{name}"),
                "publicKeyPem": _pem("PUBLIC KEY", f"fake-public-{name}")}
    if typ in ("tls:index/selfSignedCert:SelfSignedCert", "tls:index/locallySignedCert:LocallySignedCert"):
        return {"certPem": _pem("CERTIFICATE", f"fake-cert-{name}")}
    if typ == "tls:index/certRequest:CertRequest":
        return {"certRequestPem": _pem("CERTIFICATE REQUEST", f"fake-csr-{name}")}
    if typ == "random:index/randomPassword:RandomPassword":
        return {"result": f"FAKE-{CANARY}-PASSWORD-{name}", "bcryptHash": f"FAKE-{CANARY}-HASH-{name}"}
    if typ == "kubernetes:cert-manager.io/v1:Certificate":
        # As cert-manager reports an issued certificate (read back by CertificatePair).
        return {"status": {"revision": 1, "conditions": [{"type": "Ready", "status": "True"}]}}
    if typ == "kubernetes:cert-manager.io/v1:CertificateRequest":
        import base64

        def b64(text: str) -> str:
            return base64.b64encode(text.encode()).decode()

        return {"status": {"ca": b64(_pem("CERTIFICATE", f"fake-cert-manager-ca-{name}")),
                           "certificate": b64(_pem("CERTIFICATE", f"fake-cert-manager-cert-{name}"))}}
    if typ == "pulumi-python:dynamic/random:GeneratedPassword":
        return {"result": f"FAKE-{CANARY}-PASSWORD-{name}"}
    if typ == "pulumi-python:dynamic/tls:LocalTls":
        return {"ca_cert_pem": _pem("CERTIFICATE", f"fake-ca-{name}"),
                "ca_key_pem": _pem("PRIVATE KEY", f"FAKE-{CANARY}-CA-KEY-{name}"),
                "cert_pem": _pem("CERTIFICATE", f"fake-cert-{name}"),
                "key_pem": _pem("PRIVATE KEY", f"FAKE-{CANARY}-KEY-{name}"), "not_after": 4102444800}
    if typ == "aws:kms/key:Key":
        return {"arn": f"arn:aws:kms:eu-west-1:{ACCOUNT}:key/{name}-key-id", "keyId": f"{name}-key-id"}
    if typ == "aws:kms/alias:Alias":
        return {"arn": f"arn:aws:kms:eu-west-1:{ACCOUNT}:{inputs.get('name', name)}"}
    if typ == "aws:iam/role:Role":
        return {"arn": f"arn:aws:iam::{ACCOUNT}:role/{inputs.get('name', name)}",
                "name": inputs.get("name", name)}
    if typ == "aws:iam/policy:Policy":
        return {"arn": f"arn:aws:iam::{ACCOUNT}:policy/{inputs.get('name', name)}"}
    if typ in ("aws:s3/bucket:Bucket", "aws:s3/bucketV2:BucketV2"):
        bucket = inputs.get("bucket") or f"{name}-fake123"
        return {"bucket": bucket, "arn": f"arn:aws:s3:::{bucket}", "id": bucket}
    if typ == "vault:index/authBackend:AuthBackend":
        return {"accessor": f"auth_{inputs.get('type', 'x')}_fake0001"}
    if typ == "vault:index/mount:Mount":
        return {"accessor": f"{inputs.get('type', 'x')}_fake0002"}
    if typ == "pulumi-python:dynamic:Resource" and "shares" in inputs:
        return {"root_token": f"FAKE-{CANARY}-ROOT-TOKEN",
                "keys": [f"FAKE-{CANARY}-SHARE-{i}" for i in range(int(inputs["shares"]))],
                "keys_base64": [f"FAKE-{CANARY}-SHARE64-{i}" for i in range(int(inputs["shares"]))],
                "status": "initialized", "initialized_by_stack": True}
    if typ == "pulumi-python:dynamic/bootstrap:VaultReady":
        return {"status": "ready"}
    if typ == "pulumi-python:dynamic/bootstrap:DeployIdentity":
        # As a first run's create does: a deployer token for the next hour in the first-run file (the
        # program runs in the project folder), the root token revoked.
        import os
        import time

        revoked = bool(inputs.get("revoke_root_token"))
        if revoked:
            path = inputs["first_run_file"]
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            with open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as handle:
                handle.write(f"FAKE-{CANARY}-FIRST-RUN-TOKEN\n")
        return {"bootstrap_expires_at": int(time.time()) + 3600 if revoked else 0, "root_token_revoked": revoked}
    return {}


def fake_call(token: str, args: dict[str, Any]) -> tuple[dict[str, Any], list]:
    if token == "aws:index/getCallerIdentity:getCallerIdentity":
        return {"accountId": ACCOUNT, "arn": f"arn:aws:iam::{ACCOUNT}:user/ci", "userId": "AIDFAKE"}, []
    if token == "aws:index/getRegion:getRegion":
        return {"name": "eu-west-1", "region": "eu-west-1"}, []
    if token == "aws:index/getPartition:getPartition":
        return {"partition": "aws", "dnsSuffix": "amazonaws.com"}, []
    return {}, []


# --- Vault configuration (components/configuration.py): PKI outputs a real provider computes ------

_fake_outputs_before_configuration = fake_outputs


def _configuration_fakes(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    if typ == "vault:pkiSecret/secretBackendRootCert:SecretBackendRootCert":
        cert = _pem("CERTIFICATE", f"fake-vault-root-{name}")
        return {"certificate": cert, "issuingCa": cert, "serialNumber": "01:02", "issuerId": f"{name}-issuer"}
    if typ == "vault:pkiSecret/secretBackendIntermediateCertRequest:SecretBackendIntermediateCertRequest":
        return {"csr": _pem("CERTIFICATE REQUEST", f"fake-vault-csr-{name}"), "keyId": f"{name}-key"}
    if typ == "vault:pkiSecret/secretBackendRootSignIntermediate:SecretBackendRootSignIntermediate":
        cert = _pem("CERTIFICATE", f"fake-vault-intermediate-{name}")
        root = _pem("CERTIFICATE", "fake-vault-root")
        return {"certificate": cert, "issuingCa": root, "caChain": [cert, root], "certificateBundle": cert + root,
                "serialNumber": "03:04"}
    return {}


def fake_outputs(typ: str, name: str, inputs: dict[str, Any]) -> dict[str, Any]:
    return {**_fake_outputs_before_configuration(typ, name, inputs), **_configuration_fakes(typ, name, inputs),
            **_stack_reference(typ)}


def fake_pgp_key(n: int = 0) -> str:
    """Base64 of something shaped like a binary OpenPGP public key (a public-key packet header):
    what the config's shape check wants, for tests that never encrypt anything with it."""
    import base64

    return base64.b64encode(bytes([0x99, 0x01, 0x0D, 0x04]) + n.to_bytes(4, "big") + bytes(24)).decode()


# --- another stack's outputs, for programs that read the platform with a StackReference -------------

# A JSON file of the outputs every StackReference answers with (a test writes the platform's exports).
STACK_OUTPUTS_ENV = "VAULT_PLATFORM_FAKE_STACK_OUTPUTS"


def _stack_reference(typ: str) -> dict[str, Any]:
    if typ != "pulumi:pulumi:StackReference":
        return {}
    import json
    import os
    from pathlib import Path

    path = os.environ.get(STACK_OUTPUTS_ENV)
    return {"outputs": json.loads(Path(path).read_text()) if path else {}, "secretOutputNames": []}
