"""Print a Vault token for a CI job that runs a command rather than the program (the restore and
migration workflows): the job's GitHub OIDC token, minted now, logged in to the stack's CI login as
VAULT_PLATFORM_VAULT_ROLE, in the same login order as the program (components/providers/vault_http.py).

    VAULT_TOKEN=$(venv/bin/python scripts/ci_vault_login.py <api address> <CA file>)

Needs `permissions: id-token: write` in the job. The token goes to stdout only; what went wrong goes to
stderr, naming the role and Vault's reason, never a token.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from components.providers.vault_http import VaultHttp


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("address", help="the stack's apiAddress")
    parser.add_argument("ca_file", help="the stack's CA (pulumi stack output caCertificate)")
    parser.add_argument("--path", default="jwt-ci", help="the CI login's path (deploy.jwt.path)")
    parser.add_argument("--audience", default="vault", help="the CI login's audience (deploy.jwt.audience)")
    args = parser.parse_args(argv)
    props = {"address": args.address, "ca_cert_pem": Path(args.ca_file).read_text(), "login_path": args.path,
             "login_audience": args.audience}
    try:
        print(VaultHttp()._credentials(props))
    except RuntimeError as exc:
        print(f"ci_vault_login: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
