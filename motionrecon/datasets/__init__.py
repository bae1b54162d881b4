"""Readers that turn motion-capture and benchmark files into `Observations`."""
