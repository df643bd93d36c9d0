"""whisperd: a self-hosted speech-to-text server and command-line tool for Whisper models.

Importing the package has no side effects: no model load, no environment read, no GPU touch.
"""

__version__ = "0.1.0"

__all__ = ["__version__"]
