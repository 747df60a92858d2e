"""The `monitors:` section's regular expressions and Guru Meditation keys are checked
at `validate` time, with the file, the key path and `re`'s own message."""

from __future__ import annotations

import pytest

from osbench.errors import ScenarioError
from osbench.monitors.config import GuruMeditation, MonitorsConfig
from osbench.scenario import parse_scenario
from osbench.scenario.source import load_text


def monitors_of(section: str) -> MonitorsConfig:
    sc = parse_scenario(load_text(
        f"name: x\nkind: tick\nparams: {{ticks: 1}}\nmonitors: {section}\n", "test.yaml"))
    assert sc.monitors is not None
    return sc.monitors


@pytest.mark.parametrize(("section", "where", "says"), [
    ("{processes: [{services: {my-api: 'my-api(wsgi'}}]}",
     "monitors.processes[0].services.my-api",
     "'my-api(wsgi' is not a regular expression (missing ), unterminated subpattern at "
     "position 6)"),
    ("{rabbitmq: [{queues: {mine: '*_fanout'}}]}", "monitors.rabbitmq[0].queues.mine",
     "'*_fanout' is not a regular expression (nothing to repeat at position 0)"),
    ("{rabbitmq: [{queues: {mine: ''}}]}", "monitors.rabbitmq[0].queues.mine",
     "must not be empty"),
    ("{guru_meditation: {service: neutron-dhcp-agent, pattern: 'dhcp[agent'}}",
     "monitors.guru_meditation.pattern", "is not a regular expression (unterminated "
     "character set at position 4)"),
    ("{guru_meditation: {service: neutron-dhcp-agent, when: backlgo}}",
     "monitors.guru_meditation.when", "did you mean 'backlog'"),
    ("{guru_meditation: {service: neutron-dhcp-agent, log: ''}}",
     "monitors.guru_meditation.log", "must not be empty"),
])
def test_bad_values_are_validation_errors(section: str, where: str, says: str) -> None:
    with pytest.raises(ScenarioError) as info:
        monitors_of(section)
    text = str(info.value) + " " + (info.value.hint or "")
    assert "test.yaml" in text and where in text and says in text, text


def test_good_patterns_and_guru_keys_load() -> None:
    m = monitors_of("{processes: [{services: {my-api: 'my-api-(wsgi|uwsgi)'}}], "
                    "rabbitmq: [{queues: {mine: 'mine(\\..+)?'}}], guru_meditation: "
                    "{service: neutron-dhcp-agent, when: start, unit: neutron-dhcp}}")
    assert m.processes[0].services == {"my-api": "my-api-(wsgi|uwsgi)"}
    assert m.rabbitmq[0].queues == {"mine": r"mine(\..+)?"}
    assert m.guru_meditation == GuruMeditation(service="neutron-dhcp-agent", when="start",
                                               unit="neutron-dhcp")
    defaults = monitors_of("{guru_meditation: {service: nova-conductor}}").guru_meditation
    assert defaults is not None
    assert (defaults.when, defaults.host, defaults.log, defaults.unit, defaults.pattern) == (
        "backlog", "local", None, None, None)
