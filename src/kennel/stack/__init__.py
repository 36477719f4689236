"""Stack files: a whole workflow declared in YAML (``kennel plan/up/down``)."""
