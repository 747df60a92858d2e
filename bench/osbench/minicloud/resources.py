"""minicloud's OpenStack resources, made with openstacksdk (the `openstack` CLI costs
~2.5 s per call on 2 cores): service users and endpoints; the flat provider
network, a tiny image and a flavor. Every step finds before it creates.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import openstack

from osbench.minicloud import layout
from osbench.minicloud.config import Secrets

#: (service user, service name, type, URL)
ENDPOINTS = (
    ("placement", "placement", "placement", layout.url("placement")),
    ("glance", "glance", "image", layout.url("glance")),
    ("nova", "nova", "compute", layout.url("nova-api", "/v2.1")),
    ("neutron", "neutron", "network", layout.url("neutron-api")),
)
#: Until nova-compute has registered and Neutron's agents report alive; ~30 s here.
READY_TIMEOUT_S = 300.0


def admin(secrets: Secrets) -> Any:
    return openstack.connect(**layout_auth(secrets), region_name=layout.REGION)


def layout_auth(secrets: Secrets) -> dict[str, Any]:
    return {"auth_url": layout.url("keystone", "/v3"), "username": "admin",
            "password": secrets.admin, "project_name": "admin",
            "user_domain_name": "Default", "project_domain_name": "Default"}


def identity(secrets: Secrets) -> None:
    """The service project, service users with admin on it, services and endpoints."""
    conn = admin(secrets)
    ident = conn.identity
    project = ident.find_project("service", domain_id="default") or ident.create_project(
        name="service", domain_id="default", description="minicloud services")
    role = ident.find_role("admin")
    for user_name, service_name, service_type, url in ENDPOINTS:
        password = getattr(secrets, f"user_{user_name}")
        user = ident.find_user(user_name, domain_id="default")
        if user is None:
            user = ident.create_user(name=user_name, password=password, domain_id="default")
        else:
            ident.update_user(user, password=password)
        ident.assign_project_role_to_user(project, user, role)
        service = next((s for s in ident.services() if s.type == service_type), None)
        if service is None:
            service = ident.create_service(name=service_name, type=service_type)
        have = {e.interface for e in ident.endpoints(service_id=service.id)}
        for interface in ("public", "internal", "admin"):
            if interface not in have:
                ident.create_endpoint(service_id=service.id, interface=interface, url=url,
                                      region_id=layout.REGION)
    conn.close()


def _wait(what: str, ready: Any, timeout_s: float = READY_TIMEOUT_S) -> None:
    from osbench.minicloud.manage import MinicloudError

    deadline = time.monotonic() + timeout_s
    last = ""
    while time.monotonic() < deadline:
        try:
            if ready():
                return
        except openstack.exceptions.SDKException as exc:
            last = f" (last error: {exc})"
        time.sleep(2.0)
    raise MinicloudError(f"{what} not ready within {timeout_s:.0f} s{last}; see the "
                         "services' logs under /var/log")


def compute_and_network(state_dir: Path) -> dict[str, str]:
    """The network, subnet, image and flavor; waits for compute and agents to be ready."""
    conn = openstack.connect(cloud=layout.CLOUD_NAME)
    try:
        def agents_alive() -> bool:
            agents = list(conn.network.agents())
            kinds = {a.agent_type for a in agents if a.is_alive}
            return {"Linux bridge agent", "DHCP agent"} <= kinds

        _wait("Neutron's Linux bridge and DHCP agents", agents_alive)

        net = conn.network.find_network(layout.NETWORK_NAME)
        if net is None:
            net = conn.network.create_network(
                name=layout.NETWORK_NAME, provider_network_type="flat",
                provider_physical_network=layout.PHYSNET, is_shared=True,
                # No port security: no ebtables/iptables rules on 2 cores, and the
                # guests are namespaces on a network that goes nowhere.
                is_port_security_enabled=False)
        subnet = conn.network.find_subnet(layout.SUBNET_NAME, network_id=net.id)
        if subnet is None:
            start, end = layout.ALLOCATION_POOL
            subnet = conn.network.create_subnet(
                name=layout.SUBNET_NAME, network_id=net.id, ip_version=4,
                cidr=layout.SUBNET_CIDR, gateway_ip=None, is_dhcp_enabled=True,
                allocation_pools=[{"start": start, "end": end}], dns_nameservers=[])

        image = conn.image.find_image(layout.IMAGE_NAME)
        if image is None:
            image = conn.image.create_image(
                name=layout.IMAGE_NAME, data=b"osbench minicloud: the fake driver boots "
                b"nothing\n", disk_format="raw", container_format="bare",
                visibility="public", allow_duplicates=False)
        flavor = conn.compute.find_flavor(layout.FLAVOR_NAME)
        if flavor is None:
            flavor = conn.compute.create_flavor(name=layout.FLAVOR_NAME, is_public=True,
                                                **layout.FLAVOR)

        def hypervisor_ready() -> bool:
            return any(h.name for h in conn.compute.hypervisors()) and any(
                s.state == "up" and s.binary == "nova-compute"
                for s in conn.compute.services())

        _wait("nova-compute (fake driver) registered with the scheduler", hypervisor_ready)

        def dhcp_ready() -> bool:
            return Path(f"/var/run/netns/qdhcp-{net.id}").exists() and any(
                p.device_owner == "network:dhcp" and p.status == "ACTIVE"
                for p in conn.network.ports(network_id=net.id))

        _wait(f"the DHCP agent's dnsmasq in qdhcp-{net.id}", dhcp_ready)
        return {"network_id": net.id, "subnet_id": subnet.id, "image_id": image.id,
                "flavor_id": flavor.id, "qdhcp_netns": f"qdhcp-{net.id}"}
    finally:
        conn.close()
