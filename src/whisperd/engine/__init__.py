"""Speech-to-text engines behind one protocol, the model catalogue, Hub downloads, the model
manager and the decoding options."""
