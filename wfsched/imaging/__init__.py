"""Imaging: slides, tissue masks, tile planning, the segmentation task, stitching and outputs.

Only `segment.py` imports ray; everything else is plain functions that unit tests drive directly.
"""
