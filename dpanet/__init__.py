"""DPANet dual-pixel defocus deblurring: model, export, plugins, runtime and calibration."""

__version__ = "0.1.0"


def __getattr__(name: str):
    """``dpanet.Deblurrer``, imported on first use so that ``import dpanet`` stays light (and
    torch-free: only a PyTorch checkpoint imports torch)."""
    if name == "Deblurrer":
        from dpanet.runtime.deblurrer import Deblurrer

        return Deblurrer
    raise AttributeError(f"module 'dpanet' has no attribute {name!r}")
