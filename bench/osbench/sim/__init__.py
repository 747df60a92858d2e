"""The embedded simulated OpenStack cloud (Keystone, Nova, Neutron, Glance).

`SimCloud` serves the API subset osbench uses over real HTTP on loopback,
so openstacksdk drives it unmodified; `osbench.sim.model` plans each
instance's life from the profile and the seed; `osbench.sim.guest` makes the
simulated guests phone home like cloud-init. Profiles: `list_profiles()`,
`load_profile(name)`.
"""

from osbench.sim.cloud import SimCloud
from osbench.sim.profiles import Profile, list_profiles, load_profile

__all__ = ["Profile", "SimCloud", "list_profiles", "load_profile"]
