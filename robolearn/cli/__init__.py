"""The ``robolearn`` command and its subcommands."""
