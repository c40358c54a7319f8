"""How the command-line tools fail: one line on stderr, never a traceback."""
import argparse


class UsageError(ValueError):
    """A command line that cannot run: bad or conflicting flags, or a run folder mismatch."""


class OneLineParser(argparse.ArgumentParser):
    """argparse, with its errors on one line (and the pointer to --help)."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see --help)\n")


def one_line(error):
    """An exception's message on one line (some, like DownloadError, list causes on several)."""
    return " ".join(part.strip() for part in str(error).splitlines() if part.strip()) or type(error).__name__
