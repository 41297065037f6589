"""Copy secrets from AWS Secrets Manager into Vault KV v2, with a plan to review, a copy that can be
re-run, a verification that proves nothing was lost or altered, and a check that tells when the
old store is no longer used.

    python -m migration plan|apply|verify|status|policy --map <aws-prefix>=<kv-prefix> [...]

Layers: ``mapping`` (pure rules: names to paths, values to KV data, provenance metadata, what to do)
-> ``retry`` -> ``source`` (Secrets Manager through boto3) and ``vault`` (KV v2 over HTTPS) ->
``report`` (journal, progress, tables) -> ``engine`` (the four commands) -> ``cli``.
Values only ever live in memory: nothing here prints, logs or stores them.
"""
