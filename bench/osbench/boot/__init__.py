"""Parts of the `boot` kind: instance tracking and outcome classification."""
