"""`python -m grader ...` works like the `grader` command."""
from grader.cli import main

main()
