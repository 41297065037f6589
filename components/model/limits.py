"""Numbers the program acts on that the config rules must agree with: kept here, once, so a rule
and the code it protects cannot drift apart."""

from __future__ import annotations

# The first run's deployer token is used only while it has this long left; a shorter lifetime would
# leave the run, right after it revoked the root token, with no token at all.
BOOTSTRAP_MARGIN_SECONDS = 600
# That token is needed only for the rest of one run: anything longer is a standing admin credential.
BOOTSTRAP_TOKEN_MAX_SECONDS = 24 * 3600

# Prometheus refuses a scrape whose timeout is longer than its interval.
SCRAPE_TIMEOUT = "10s"
SCRAPE_TIMEOUT_SECONDS = 10

# `pulumi up` replaces the generated server certificate once it is this close to expiring: a third of
# its lifetime, at most 30 days.
MAX_EARLY_RENEWAL_HOURS = 720


def early_renewal_hours(validity_hours: int) -> int:
    return min(MAX_EARLY_RENEWAL_HOURS, validity_hours // 3)
