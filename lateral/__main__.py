"""`python -m lateral` is the `lateral` command."""

from lateral.cli import main

main()
