# glmmTMB's Laplace ML fits of zero-inflated and hurdle counts (issue 30; run: Rscript
# glmmtmb_zero_inflation.R > glmmtmb_zero_inflation.json). Debian packages r-base-core,
# r-cran-glmmtmb; R 4.2.2, glmmTMB 1.1.5. The package's dataset Salamanders
# (glmm_bayes/datasets/Salamanders.csv) is glmmTMB's (Price et al. 2016; its columns site,
# mined, cover, spp, count), written by this script; data/zero_inflated_sim.csv is made by
# simulate_data.py.
# The factors are releveled alphabetically, as the package orders a column's levels, so that
# the coefficients have the same names (minedyes, sppDF, ...).
suppressMessages(library(glmmTMB))
data(Salamanders, package = "glmmTMB")
bundled <- "../../glmm_bayes/datasets/Salamanders.csv"
write.csv(Salamanders[, c("site", "mined", "cover", "spp", "count")], bundled, row.names = FALSE)
sal <- read.csv(bundled, stringsAsFactors = TRUE)
sim <- read.csv("data/zero_inflated_sim.csv")
sim$g <- factor(sim$g)
summarise <- function(m) {
  vc <- VarCorr(m)$cond[[1]]
  out <- list(fixef = as.list(fixef(m)$cond), zi = as.list(fixef(m)$zi),
              se = as.list(sqrt(diag(vcov(m)$cond))), se_zi = as.list(sqrt(diag(vcov(m)$zi))),
              sd = unname(attr(vc, "stddev")),
              cor = unname(attr(vc, "correlation")[lower.tri(vc)]),
              logLik = as.numeric(logLik(m)),
              converged = m$fit$convergence == 0 && m$sdr$pdHess)
  if (family(m)$family %in% c("nbinom2", "truncated_nbinom2")) out$shape <- sigma(m)
  out
}
fits <- list(
  zip_salamanders = glmmTMB(count ~ mined + (1 | site), zi = ~mined, sal, family = poisson),
  zip_constant = glmmTMB(count ~ mined + cover + (1 | site), zi = ~1, sal, family = poisson),
  zinb_salamanders = glmmTMB(count ~ spp + mined + (1 | site), zi = ~mined, sal,
                             family = nbinom2),
  zinb_slopes = glmmTMB(y ~ x + (x | g), zi = ~z, sim, family = nbinom2),
  # hurdle models: zi is P(y = 0), the counts above 0 a zero-truncated Poisson or NB
  hurdle_poisson = glmmTMB(count ~ mined + (1 | site), zi = ~mined, sal,
                           family = truncated_poisson),
  hurdle_nb = glmmTMB(count ~ spp + mined + (1 | site), zi = ~mined, sal,
                      family = truncated_nbinom2))
cat(jsonlite::toJSON(c(list(glmmTMB = as.character(packageVersion("glmmTMB")), R = R.version.string),
                       lapply(fits, summarise)), digits = I(12), auto_unbox = TRUE, pretty = TRUE))
