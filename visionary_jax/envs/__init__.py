"""PyBullet tasks of the paper (grasping, block stacking) and data-collection policies."""
