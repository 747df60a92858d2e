"""Kind `audit`: before and after an upgrade, version drift across hosts and
instances whose security groups are not enforced (field notes: the firewall
incident, issue 20).

The package: `params` (schema), `run` (a case), `versions` (the one command per
host and its output), `drift` (majority per role), `scope` (instances, ports,
groups and rules from the API), `rules` (what the rules open to the vantage),
`probe` (the bounded TCP/UDP probe engine), `report`.

The target is a cloud (the simulated one by default, a clouds.yaml entry with
--cloud) when the firewall check runs: it reads the API. The versions check
reaches its hosts through `versions.inventory`; without one, a versions-only
audit's target is the hosts of --hosts (default: the local lab's), and no cloud
is opened (`params.target_of`).
"""

from __future__ import annotations

from osbench.kinds.audit.params import AuditParams, target_of
from osbench.kinds.base import KindSpec, MetricSpec

SPEC = KindSpec(
    name="audit",
    description="version drift across hosts; security groups enforced on running instances",
    params_type=AuditParams,
    target="cloud",
    target_of=target_of,
    sample_table="probes",
    sample_columns={"latency_ms": "one probe's time to its answer (or timeout), ms"},
    metrics={
        "drifted_packages": "packages whose version differs from their role's majority on "
                            "some host",
        "drifted_configs": "config files whose sha256 differs from their role's majority",
        "drifted_kernels": "roles whose hosts do not all run the same kernel",
        "drifted_hosts": "hosts with any package, kernel or config off their role's majority",
        "hosts_unanswered": "hosts whose audit command failed or timed out",
        "instances_in_scope": "instances the firewall check read from the API",
        "exposed_instances": "instances where a port their rules close was reached",
        "exposed_ports": "probes that reached a port the rules close (open or refused)",
        "unreachable_open_ports": "TCP probes to a port the rules open that got no answer",
        "hypervisors_affected": "hypervisors hosting an exposed instance or an unreachable "
                                "open port",
        "probes_sent": "probes made (not cut by the time budget)",
        "probes_inconclusive": "probes that say nothing (no route, error, UDP silence, "
                               "budget)",
    },
    implementation="osbench.kinds.audit.run:AuditKind",
    # `osbench compare`: the share of hosts in step with their role and of probes
    # whose answer matches the rules; from none off to some is a "new failure", back
    # is "fixed". Which package or port: the changes tables of `osbench report A B`.
    compare=(MetricSpec("hosts_in_step", "version_hosts", "rate", "in_step",
                        lower_is_better=False, default_threshold_pct=0.0, success="ok"),
             MetricSpec("probes_ok", "probes", "rate", "finding", lower_is_better=False,
                        default_threshold_pct=0.0, success="ok")),
    report="osbench.kinds.audit.report:sections",
    # The probe instances of `firewall.boot`: the boot kind's cleanup (the run's name
    # AND its id in the metadata), from the `resources` row journaled before creating.
    cleanup="osbench.kinds.boot.cleanup:cleanup_run",
)
