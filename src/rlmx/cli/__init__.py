"""The ``rlmx`` command line."""
