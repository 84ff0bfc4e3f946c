"""INT8 calibration data and Q/DQ quantisation for DPANet."""
