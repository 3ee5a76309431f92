"""Synthetic CMS DE-SynPUF files at any scale: calibration, generator, corruptions."""
