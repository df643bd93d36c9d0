"""``python -m whisperd`` runs the command-line interface."""

from whisperd.cli import main

main()
