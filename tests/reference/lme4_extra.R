# Further lme4 reference values for the tests (run: Rscript lme4_extra.R > lme4_extra.json).
# Debian packages r-base-core, r-cran-lme4; R 4.2.2, lme4 1.1-31. The data are the package's CSVs.
suppressMessages(library(lme4))
data_dir <- "../../glmm_bayes/datasets/"
read <- function(name, factors = character()) {
  d <- read.csv(paste0(data_dir, name, ".csv"))
  for (f in factors) d[[f]] <- factor(d[[f]])
  d
}
sleep <- read("sleepstudy", "Subject")
rikz <- read("RIKZ", "Beach")
fits <- list(
  sleep_rs_reml = lmer(Reaction ~ Days + (Days|Subject), sleep),
  sleep_ri_ml = lmer(Reaction ~ Days + (1|Subject), sleep, REML = FALSE),
  dyestuff_reml = lmer(Yield ~ 1 + (1|Batch), read("Dyestuff")),
  penicillin_reml = lmer(yield ~ treat + (1|blend), read("penicillin")),
  rikz_poisson_laplace = glmer(Richness ~ NAP + (1|Beach), rikz, family = poisson))
# Profile intervals on a grid 6x finer than lme4's default (delta.cutoff = 1/8), so that the
# spline interpolation of the profile adds no more than ~1e-6 relative error to the ends.
profile_ci <- lapply(fits, function(m) {
  ci <- confint(profile(m, delta.cutoff = 1/50), oldNames = FALSE)
  list(names = rownames(ci), lower = unname(ci[, 1]), upper = unname(ci[, 2]))
})
# RIKZ Laplace with PIRLS run to convergence (lme4's default tolPwrss = 1e-7 leaves the
# conditional modes inexact, which moves the deviance by 3e-5 and the Hessian SEs by 0.6%).
tight <- glmer(Richness ~ NAP + (1|Beach), rikz, family = poisson,
               control = glmerControl(tolPwrss = 1e-13))
rikz_tight <- list(fixef = as.list(fixef(tight)), se = as.list(sqrt(diag(as.matrix(vcov(tight))))),
                   logLik = as.numeric(logLik(tight)), theta = unname(getME(tight, "theta")))
cat(jsonlite::toJSON(list(lme4 = as.character(packageVersion("lme4")), R = R.version.string,
                          profile_confint = profile_ci, rikz_poisson_laplace_tight = rikz_tight),
                     digits = I(12), auto_unbox = TRUE, pretty = TRUE))
