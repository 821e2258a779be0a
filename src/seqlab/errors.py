"""The one exception the command line turns into a single clear line and exit code 2."""


class SeqlabError(Exception):
    """A problem with the user's input, named with its fix; never a bug in seqlab."""
