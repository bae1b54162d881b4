"""Outputs of a reconstruction: the folder contract (`contract`), and formats other tools open."""
