"""``python -m headstart`` runs the CLI."""

from headstart.cli.app import main

main()
