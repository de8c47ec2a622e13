"""Coverage-guided fuzzing (atheris) of request validation, normalisation, the data-sharing agreement parser
and the audit verifier: `python -m fuzz TARGET --seconds N`, or `python -m fuzz all --seconds N`.

The targets are in fuzz.targets; this package imports nothing at start, so that the fuzzing child process
can instrument the code under test as it imports it.
"""
