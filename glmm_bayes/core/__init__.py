"""Layer 2: the arrays every engine shares and the linear algebra on them: the parameter map,
Z and Lambda_theta in row-sparse form, the blocked Cholesky factor, residual whitening, the
marginal likelihood, scaling, the optimiser and its checks, and compilation once per shape."""
