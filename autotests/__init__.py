"""Hidden tests: run by `grader grade`, never shipped to students."""
