"""Speech-to-text engines behind one protocol, the model registry and the decoding options."""
