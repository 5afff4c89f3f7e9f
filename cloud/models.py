"""Every table of the cloud, imported in one place so the metadata (and Alembic) sees them all."""

from cloud.commands.models import Command
from cloud.registry.models import Device, Event, Gateway, Store
from cloud.tenancy.models import ApiToken, Tenant, User

__all__ = ["ApiToken", "Command", "Device", "Event", "Gateway", "Store", "Tenant", "User"]
