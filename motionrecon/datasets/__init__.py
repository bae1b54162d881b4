"""Readers for motion data sets (Human3.6M, AIST++, BVH, ...) and the evaluation splits.

Every reader returns `motionrecon.observations.Observations` in the project's
conventions: metres, world z-up with the ground at z = 0, OpenCV cameras.
"""
