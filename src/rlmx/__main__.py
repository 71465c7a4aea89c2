from rlmx.cli.main import entry

entry()
