"""Side-by-side runs of two checkouts (before and after a change) on one machine."""
