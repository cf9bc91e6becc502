# ordinal's Laplace ML fits of cumulative-link mixed models (issue 30; run: Rscript
# ordinal_clmm.R > ordinal_clmm.json). Debian packages r-base-core, r-cran-ordinal; R 4.2.2,
# ordinal 2022.11.16. The package's dataset wine (glmm_bayes/datasets/wine.csv) is ordinal's
# (Randall 1989: bitterness ratings 1-5 of wines by 9 judges), written by this script;
# data/ordinal_sim.csv is made by simulate_data.py.
# clmm's model: P(y <= j) = F(theta_j - x' beta - z' b), F logistic or normal; its Laplace
# approximation takes the observed curvature at the conditional modes, as ours.
suppressMessages(library(ordinal))
data(wine, package = "ordinal")
bundled <- "../../glmm_bayes/datasets/wine.csv"
write.csv(wine[, c("response", "rating", "temp", "contact", "bottle", "judge")], bundled,
          row.names = FALSE)
wine <- read.csv(bundled, stringsAsFactors = TRUE)
wine$rating <- factor(wine$rating, ordered = TRUE)
wine$judge <- factor(wine$judge)
sim <- read.csv("data/ordinal_sim.csv", stringsAsFactors = TRUE)
sim$y <- factor(sim$y, ordered = TRUE)
sim$y_probit <- factor(sim$y_probit, ordered = TRUE)
summarise <- function(m) {
  se <- sqrt(diag(vcov(m)))
  sds <- unlist(lapply(VarCorr(m), function(v) attr(v, "stddev")))
  cors <- unlist(lapply(VarCorr(m), function(v) {
    r <- attr(v, "correlation")
    if (is.null(r)) numeric(0) else r[lower.tri(r)]
  }))
  list(fixef = as.list(m$beta), se = as.list(se[names(m$beta)]),
       thresholds = as.list(m$alpha), se_thresholds = as.list(se[names(m$alpha)]),
       sd = unname(sds), cor = unname(cors), logLik = as.numeric(logLik(m)),
       converged = m$optRes$convergence == 0)
}
fits <- list(
  wine = clmm(rating ~ temp + contact + (1 | judge), data = wine),
  wine_probit = clmm(rating ~ temp + contact + (1 | judge), data = wine, link = "probit"),
  wine_agq10 = clmm(rating ~ temp + contact + (1 | judge), data = wine, nAGQ = 10),
  crossed = clmm(y ~ x + f + (1 | g) + (1 | h), data = sim),
  crossed_probit = clmm(y_probit ~ x + f + (1 | g) + (1 | h), data = sim, link = "probit"))
out <- c(list(ordinal = as.character(packageVersion("ordinal")), R = R.version.string),
         lapply(fits, summarise))
cat(jsonlite::toJSON(out, auto_unbox = TRUE, digits = 12, pretty = TRUE), "\n")
