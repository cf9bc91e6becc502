# glmmTMB's Laplace ML fits of the families it shares with this package beyond lme4's (issue 30;
# run: Rscript glmmtmb_families.R > glmmtmb_families.json). Debian packages r-base-core,
# r-cran-glmmtmb; R 4.2.2, glmmTMB 1.1.5. data/proportions_sim.csv and data/trials_sim.csv are
# made by simulate_data.py.
# glmmTMB's Laplace uses the observed curvature of the log density (TMB's Hessian), which the
# families here ask for (`Family.observed_curvature`).
suppressMessages(library(glmmTMB))
d <- read.csv("data/proportions_sim.csv")
d$g <- factor(d$g)
trials <- read.csv("data/trials_sim.csv")
trials$g <- factor(trials$g)
summarise <- function(m) {
  vc <- VarCorr(m)$cond$g
  list(fixef = as.list(fixef(m)$cond), se = as.list(sqrt(diag(vcov(m)$cond))),
       sd = unname(attr(vc, "stddev")), cor = unname(attr(vc, "correlation")[lower.tri(vc)]),
       phi = sigma(m), logLik = as.numeric(logLik(m)),
       converged = m$fit$convergence == 0 && m$sdr$pdHess)
}
fits <- list(
  beta_logit = glmmTMB(y_logit ~ x + (1 | g), d, family = beta_family()),
  beta_probit = glmmTMB(y_probit ~ x + (x | g), d, family = beta_family(link = "probit")),
  beta_binomial = glmmTMB(cbind(k, fail) ~ x + (1 | g), trials, family = betabinomial()),
  beta_binomial_slopes = glmmTMB(cbind(k, fail) ~ x + (x | g), trials, family = betabinomial()))
cat(jsonlite::toJSON(c(list(glmmTMB = as.character(packageVersion("glmmTMB")), R = R.version.string),
                       lapply(fits, summarise)), digits = I(12), auto_unbox = TRUE, pretty = TRUE))
