"""Kind `boot`: scale-up instance boots, counted by cloud-init phone-home.

The package: `params` (schema), `run` (a case), `tracker` (one listing per poll
cycle), `phonehome` (the registration server guests phone home to) and
`connection_guard` (its caps on connections and its stall timeouts), `cleanup`
(what the run created, found by name and metadata), `console_log` (why a silent
guest is silent), `report` and `story` (report sections and field-notes chapters).
"""

from __future__ import annotations

from osbench.kinds.base import KindOption, KindSpec, MetricSpec
from osbench.kinds.boot.params import OUTCOMES, BootParams


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        raise ValueError(f"{value!r} is not an http(s) URL (e.g. http://203.0.113.5:8000)")
    return value.rstrip("/")


SPEC = KindSpec(
    name="boot",
    description="scale-up instance boots counted by cloud-init phone-home",
    params_type=BootParams,
    target="cloud",
    sample_table="instances",
    sample_columns={
        "time_to_build_s": "create request to first seen in BUILD",
        "time_to_active_s": "create request to ACTIVE: Nova's launched_at on our clock "
                            "(else the poll that first saw it: active_source says)",
        "time_to_port_active_s": "create request to its port ACTIVE: the port's updated_at "
                                 "(else first seen: port_active_source)",
        "time_to_error_s": "create request to ERROR: the failed instance action event "
                           "(else the server's updated, or first seen: error_source)",
        "time_to_phone_home_s": "create request to the phone-home arriving",
    },
    metrics={
        "requested": "instances asked for",
        **{o: f"instances with outcome {o}" for o in OUTCOMES},
        "not_started": "requested instances that did not phone home",
        "dhcp_timeout": "silent instances whose console shows the DHCP client giving up",
        "vif_failures": "ERROR instances whose fault is Nova's network allocation failure",
        "silent_dhcp_timeout_pct": "share of the silent instances (no_phone_home) whose "
                                   "console shows the DHCP client giving up, %",
        "error_vif_pct": "share of the ERROR instances whose fault is Nova's network "
                         "allocation failure, %",
        "phone_home_ok_pct": "share of requested instances that phoned home, %",
        "active_pct": "share of requested instances the API reported ACTIVE, %",
        "create_errors": "create requests that failed or timed out (e.g. HTTP 504)",
    },
    implementation="osbench.kinds.boot.run:BootKind",
    compare=(
        MetricSpec("phone_home_ok_pct", "instances", "rate", "outcome", lower_is_better=False,
                   default_threshold_pct=1.0),
        MetricSpec("time_to_active_s", "instances", "samples", "time_to_active_s"),
        MetricSpec("time_to_phone_home_s", "instances", "samples", "time_to_phone_home_s"),
    ),
    options=(
        KindOption("phone_home_url", "base URL guests phone home to, e.g. "
                   "http://203.0.113.5:8000 (boot scenarios; default: this host's address "
                   "toward the cloud's API)", metavar="URL", parse=_http_url,
                   param="phone_home_url"),
        KindOption("allow_large", "confirm counts above a scenario's max_instances"),
    ),
    report="osbench.kinds.boot.report:sections",
    chapters="osbench.kinds.boot.story:CHAPTERS",
    cleanup="osbench.kinds.boot.cleanup:cleanup_run",
    symptoms="osbench.kinds.boot.symptoms:symptoms",
)
