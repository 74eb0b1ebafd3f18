"""``python -m ocrbatch`` runs the CLI (through the console entry, as the script does)."""

from ocrbatch.console import main

main()
