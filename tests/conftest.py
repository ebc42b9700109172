"""Every test sees the tools' messages as a user does: the CLI's logging setup
(configs.cli.setup_logging) writes warnings to stderr as "warning: ..."."""

from configs.cli import setup_logging

setup_logging()
