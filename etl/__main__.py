"""`python -m etl` runs the command line."""

from .launch import main

main()
