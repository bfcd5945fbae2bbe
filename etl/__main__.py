"""`python -m etl` runs the command line."""

from .cli import main

main()
