"""The gateway: AWS-shaped data plane, kennel control plane, one port."""

from kennel.api._app import create_app
from kennel.api._context import ServerContext, build_context

__all__ = ["ServerContext", "build_context", "create_app"]
