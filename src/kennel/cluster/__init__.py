"""Ray: where kennel's processes run, and the instance types they are sized by."""

from kennel.cluster._catalog import CATALOG, InstanceType, instance_type
from kennel.cluster._ray import RayCluster

__all__ = ["CATALOG", "InstanceType", "RayCluster", "instance_type"]
