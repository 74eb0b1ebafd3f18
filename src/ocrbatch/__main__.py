"""``python -m ocrbatch`` runs the CLI."""

from ocrbatch.cli import main

main()
