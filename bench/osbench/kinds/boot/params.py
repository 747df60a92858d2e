"""The boot kind's parameters and outcomes: the schema, with light imports only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Literal

from osbench.scenario.schema import Max, Min, Pattern, PositiveDuration, PositiveInt

#: What one requested instance ends as: exactly one per instance.
OUTCOMES = ("ok", "error", "no_phone_home", "not_created", "build_timeout")

#: Nova's fault when a port did not become ACTIVE within vif_plugging_timeout.
VIF_FAILURE = "Failed to allocate the network(s)"

DEFAULT_USER_DATA = """\
#cloud-config
phone_home:
  url: {phone_home_url}
  post: [instance_id, hostname, fqdn]
  tries: 10
"""

#: Hard cap on one case's count, whatever max_instances says: 10x the
#: 10,000-instance benchmark. Past it a count is a typo or an attack.
MAX_COUNT = 100_000


@dataclass(frozen=True)
class Batch:
    """Create in requests of `size`, `interval_s` apart, instead of one request."""

    size: PositiveInt
    interval_s: PositiveDuration = 1.0


@dataclass(frozen=True)
class BootParams:
    count: Annotated[int, Min(1), Max(MAX_COUNT, "osbench's limit per case; for more, run "
                                                  "several scenarios, each with its own "
                                                  "name_prefix")]
    batch: Batch | None = None
    #: Image, flavor and networks by name or id; the simulated cloud has defaults.
    image: str | None = None
    flavor: str | None = None
    networks: tuple[str, ...] = ()
    key_name: str | None = None
    security_groups: tuple[str, ...] = ()
    #: cloud-config template; `{phone_home_url}` is replaced by the run's URL.
    user_data: str = DEFAULT_USER_DATA
    name_prefix: Annotated[str, Pattern(r"[a-z][a-z0-9-]{0,30}",
                                        "lowercase letters, digits and dashes, "
                                        "starting with a letter (at most 31)")] = "osbench"
    #: From each create request: by then ACTIVE (else build_timeout) ...
    active_timeout_s: PositiveDuration = 900.0
    #: ... and by then phoned home (else no_phone_home). The DHCP client of a
    #: guest gives up after 300 s, so less than that hides finding 2.
    phone_home_timeout_s: PositiveDuration = 1200.0
    poll_interval_s: PositiveDuration = 5.0
    cleanup: Literal["always", "on_success", "never"] = "always"
    #: After a create whose reply never came or was a proxy 504 / timeout, how long
    #: (from the last request sent) its servers may still appear; cleanup waits
    #: that long for them. A real nova-api has been seen to take minutes for 1000.
    create_outcome_wait_s: PositiveDuration = 600.0
    #: Counts above this need `--allow-large` (a typo of 10000 for 1000 is costly).
    max_instances: PositiveInt = 1000
    #: URL base guests use, e.g. `http://203.0.113.5:8000`; default: the
    #: address of the interface that routes to the cloud's API.
    phone_home_url: str | None = None
    phone_home_bind: str = "::"
    phone_home_port: Annotated[int, Min(0), Max(65535)] | None = None
    delete_concurrency: PositiveInt = 20
    console_length: PositiveInt = 200

    def __post_init__(self) -> None:
        if "{phone_home_url}" not in self.user_data:
            raise ValueError("user_data must contain {phone_home_url}, where the guests "
                             "phone home")
        if self.batch is not None and self.batch.size > self.count:
            raise ValueError(f"batch.size ({self.batch.size}) is larger than count "
                             f"({self.count})")


def batch_sizes(p: BootParams) -> list[int]:
    """The sizes of the create requests: one of `count`, or `batch.size` each."""
    if p.batch is None:
        return [p.count]
    full, rest = divmod(p.count, p.batch.size)
    return [p.batch.size] * full + ([rest] if rest else [])
