"""Rule labellers, tabular classifiers, CNN architectures, training and evaluation (issues 3, 4)."""
