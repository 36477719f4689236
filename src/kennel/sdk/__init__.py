"""The Python SDK, in the shape of the SageMaker Python SDK (private modules; the public
names are re-exported by ``kennel`` and its SageMaker-shaped modules)."""
