"""Ray: where kennel's processes run."""

from kennel.cluster._ray import RayCluster

__all__ = ["RayCluster"]
