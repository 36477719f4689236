"""Lambda-style functions: the control plane (``_service``), the runtime and the dispatcher."""
