"""The embedded world: procedural scenes, their captions, oracles that judge pixels, and a small generator.

Everything here runs offline on a CPU, and its ground truth is known, so every offline benchmark can be
measured against it.
"""
