"""Files studio writes and reads back: atomic writes and training checkpoints.

Below training and the callbacks (it needs neither Lightning nor Hydra), so studio-generate and
studio-eval read a checkpoint without loading the training stack.
"""
