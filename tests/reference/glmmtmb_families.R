# glmmTMB's Laplace ML fits of the families it shares with this package beyond lme4's (issue 30;
# run: Rscript glmmtmb_families.R > glmmtmb_families.json). Debian packages r-base-core,
# r-cran-glmmtmb; R 4.2.2, glmmTMB 1.1.5. data/proportions_sim.csv and data/trials_sim.csv are
# made by simulate_data.py.
# The lognormal here is brms's (log y ~ N(mu, sigma^2)); glmmTMB's lognormal family is another
# parametrisation (mean and sd of y), so its fits are glmmTMB's gaussian fits of log y, whose
# log-likelihood less sum(log y) (the Jacobian) is the lognormal's. The Student-t's df is
# exp(psi), glmmTMB 1.1.5's parameter for it: estimated, or fixed by mapping psi.
# glmmTMB's Laplace uses the observed curvature of the log density (TMB's Hessian), which the
# families here ask for (`Family.observed_curvature`).
suppressMessages(library(glmmTMB))
d <- read.csv("data/proportions_sim.csv")
d$g <- factor(d$g)
trials <- read.csv("data/trials_sim.csv")
trials$g <- factor(trials$g)
continuous <- read.csv("data/continuous_sim.csv")
continuous$g <- factor(continuous$g)
data(sleepstudy, package = "lme4")
summarise <- function(m, jacobian = 0) {
  vc <- VarCorr(m)$cond[[1]]
  out <- list(fixef = as.list(fixef(m)$cond), se = as.list(sqrt(diag(vcov(m)$cond))),
       sd = unname(attr(vc, "stddev")), cor = unname(attr(vc, "correlation")[lower.tri(vc)]),
       logLik = as.numeric(logLik(m)) + jacobian,
       converged = m$fit$convergence == 0 && m$sdr$pdHess)
  name <- if (family(m)$family %in% c("gaussian", "t")) "sigma" else "phi"
  out[[name]] <- sigma(m)
  if (family(m)$family == "t") {
    out$df_estimated <- "psi" %in% names(m$fit$par)
    out$df <- if (out$df_estimated) exp(m$fit$par[["psi"]]) else exp(m$obj$env$parList()$psi)
  }
  out
}
lognormal <- function(formula, data, y) {
  summarise(glmmTMB(formula, data, REML = FALSE), jacobian = -sum(log(y)))
}
fits <- list(
  beta_logit = glmmTMB(y_logit ~ x + (1 | g), d, family = beta_family()),
  beta_probit = glmmTMB(y_probit ~ x + (x | g), d, family = beta_family(link = "probit")),
  beta_binomial = glmmTMB(cbind(k, fail) ~ x + (1 | g), trials, family = betabinomial()),
  beta_binomial_slopes = glmmTMB(cbind(k, fail) ~ x + (x | g), trials, family = betabinomial()))
fits <- c(lapply(fits, summarise), list(
  lognormal_sleepstudy = lognormal(log(Reaction) ~ Days + (Days | Subject), sleepstudy,
                                   sleepstudy$Reaction),
  lognormal_slopes = lognormal(log(y_lognormal) ~ x + (x | g), continuous,
                               continuous$y_lognormal),
  student_t = summarise(glmmTMB(y_t ~ x + (1 | g), continuous, family = t_family())),
  student_t_df4 = summarise(glmmTMB(y_t ~ x + (1 | g), continuous, family = t_family(),
                                    start = list(psi = log(4)), map = list(psi = factor(NA)))),
  student_t_sleepstudy = summarise(glmmTMB(Reaction ~ Days + (Days | Subject), sleepstudy,
                                           family = t_family()))))
cat(jsonlite::toJSON(c(list(glmmTMB = as.character(packageVersion("glmmTMB")), R = R.version.string),
                       fits), digits = I(12), auto_unbox = TRUE, pretty = TRUE))
