"""Readers for motion data sets and files (Human3.6M, AIST++, DeepMimic clips, BVH)."""
