"""One router per resource kind."""
