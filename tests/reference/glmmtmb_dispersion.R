# glmmTMB's Laplace ML fits with a dispersion formula (issue 30; run: Rscript
# glmmtmb_dispersion.R > glmmtmb_dispersion.json). Debian packages r-base-core, r-cran-glmmtmb;
# R 4.2.2, glmmTMB 1.1.5. data/dispersion_sim.csv is made by simulate_data.py; sleepstudy is
# lme4's, Salamanders glmmTMB's (bundled with the package).
# glmmTMB 1.1.5's dispersion linear predictor is log sigma^2 for the gaussian family and log
# sigma, log shape, log phi for the others; the coefficients written here are all on the
# package's scale, the log of sigma (shape, phi): the gaussian's are halved.
suppressMessages(library(glmmTMB))
sim <- read.csv("data/dispersion_sim.csv", stringsAsFactors = TRUE)
sim$g <- factor(sim$g)
trials <- read.csv("data/trials_sim.csv")
trials$g <- factor(trials$g)
sal <- read.csv("../../glmm_bayes/datasets/Salamanders.csv", stringsAsFactors = TRUE)
data(sleepstudy, package = "lme4")
summarise <- function(m, jacobian = 0) {
  vc <- VarCorr(m)$cond[[1]]
  half <- if (family(m)$family == "gaussian") 0.5 else 1
  list(fixef = as.list(fixef(m)$cond), se = as.list(sqrt(diag(vcov(m)$cond))),
       disp = as.list(half * fixef(m)$disp),
       se_disp = as.list(setNames(half * sqrt(diag(vcov(m)$disp)), names(fixef(m)$disp))),
       sd = unname(attr(vc, "stddev")), cor = unname(attr(vc, "correlation")[lower.tri(vc)]),
       zi = as.list(fixef(m)$zi), logLik = as.numeric(logLik(m)) + jacobian,
       converged = m$fit$convergence == 0 && m$sdr$pdHess)
}
fits <- list(
  gaussian = glmmTMB(y_gaussian ~ x + (1 | g), dispformula = ~ f + x, sim, REML = FALSE),
  gaussian_sleepstudy = glmmTMB(Reaction ~ Days + (Days | Subject), dispformula = ~ Days,
                                sleepstudy, REML = FALSE),
  student_t = glmmTMB(y_t ~ x + (1 | g), dispformula = ~ f, sim, family = t_family()),
  negbinomial = glmmTMB(y_nb ~ x + (1 | g), dispformula = ~ f, sim, family = nbinom2),
  negbinomial_salamanders = glmmTMB(count ~ mined + (1 | site), dispformula = ~ mined, sal,
                                    family = nbinom2),
  gamma = glmmTMB(y_gamma ~ x + (1 | g), dispformula = ~ f, sim, family = Gamma(link = "log")),
  beta = glmmTMB(y_beta ~ x + (1 | g), dispformula = ~ x, sim, family = beta_family()),
  beta_binomial = glmmTMB(cbind(k, fail) ~ x + (1 | g), dispformula = ~ x, trials,
                          family = betabinomial()),
  zinb_salamanders = glmmTMB(count ~ mined + (1 | site), zi = ~ mined, dispformula = ~ mined,
                             sal, family = nbinom2))
out <- c(list(glmmTMB = as.character(packageVersion("glmmTMB")), R = R.version.string),
         lapply(fits, summarise))
# brms's lognormal (log y ~ N(mu, sigma^2)): glmmTMB's gaussian fit of log y, its
# log-likelihood less sum(log y), the Jacobian (as in glmmtmb_families.R)
out$lognormal <- summarise(glmmTMB(log(y_gamma) ~ x + (1 | g), dispformula = ~ f, sim,
                                   REML = FALSE), jacobian = -sum(log(sim$y_gamma)))
out$student_t$df <- exp(fits$student_t$fit$par[["psi"]])
cat(jsonlite::toJSON(out, auto_unbox = TRUE, digits = 12, pretty = TRUE), "\n")
