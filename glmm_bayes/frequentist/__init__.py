"""Layer 3, frequentist engines: REML/ML, Laplace/AGQ, profiles, denominator df, separation."""
