"""The error type the CLI reports as one line (bad input, not a bug). Torch-free."""


class DPANetError(ValueError):
    """A problem with the user's input: a file, a checkpoint, an option or a size."""
