"""Model monitoring: data capture, baselines, drift and accuracy reports.

Keep this module free of imports: ``kennel.endpoints`` imports
``kennel.monitoring._capture`` (the data-capture spec), so anything imported here would be
loaded by every endpoint import and could make an import cycle.
"""
