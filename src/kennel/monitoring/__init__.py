"""Model monitoring: baselines, drift and accuracy of what an endpoint's data capture
recorded (the capture itself is the endpoint's: ``kennel.endpoints._capture``)."""
