"""Stage 3 of the pipeline: engines that fit a `ModelSpec`."""
