"""DPANet dual-pixel defocus deblurring: model, export, plugins, runtime and calibration."""

__version__ = "0.1.0"
