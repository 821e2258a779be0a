"""The one exception the command line turns into a single clear line and exit code 2."""


class SeqlabError(Exception):
    """A problem with the user's input, named with its fix; never a bug in seqlab."""


class OptionError(SeqlabError, ValueError):
    """A model or backbone option outside what it accepts: a ValueError to code that builds modules
    directly, one clear line on the command line. Only the user's options raise it; every other
    ValueError in seqlab is a bug and shows as one."""
