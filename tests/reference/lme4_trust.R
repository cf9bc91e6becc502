# lme4's answers on the simulated data in data/ (run: Rscript lme4_trust.R > lme4_trust.json).
# Debian packages r-base-core, r-cran-lme4; R 4.2.2, lme4 1.1-31. The data are made by
# simulate_data.py in this folder; each fit here is one the package once got wrong silently.
suppressMessages(library(lme4))
read <- function(name, factors) {
  d <- read.csv(paste0("data/", name, ".csv"))
  for (f in factors) d[[f]] <- factor(d[[f]])
  d
}
summarise <- function(m) {
  vc <- as.data.frame(VarCorr(m))
  list(fixef = as.list(fixef(m)), se = as.list(sqrt(diag(as.matrix(vcov(m))))),
       logLik = as.numeric(logLik(m)), theta = unname(getME(m, "theta")),
       sdcor = vc$sdcor, grp = vc$grp, singular = isSingular(m))
}
ticks <- read("ticks_sim", c("YEAR", "BROOD", "LOCATION", "INDEX"))
growth <- read("growth_sim", "id")
growth2 <- read("growth_sim2", "id")
crossed <- read("crossed_sim", c("a", "b"))
tight <- glmerControl(tolPwrss = 1e-13, optCtrl = list(maxfun = 1e5))
fits <- list(
  ticks_three_terms = glmer(TICKS ~ YEAR + HEIGHT + (1|BROOD) + (1|INDEX) + (1|LOCATION),
                            ticks, family = poisson, control = tight),
  ticks_two_terms = glmer(TICKS ~ YEAR + HEIGHT + (1|BROOD) + (1|LOCATION), ticks,
                          family = poisson, control = tight),
  growth_reml = lmer(y ~ t + t2 + (t + t2 | id), growth),
  growth_ml = lmer(y ~ t + t2 + (t + t2 | id), growth, REML = FALSE),
  growth2_reml = lmer(y ~ t + t2 + (t + t2 | id), growth2),
  growth2_ml = lmer(y ~ t + t2 + (t + t2 | id), growth2, REML = FALSE),
  crossed_reml = lmer(y ~ x + (1|a) + (1|b), crossed))
out <- lapply(fits, summarise)
# lme4 stops the ticks fits with its own gradient warning (HEIGHT in raw units); with HEIGHT
# standardised it converges, and its SEs of the slopes (mapped back to HEIGHT's units) are the
# converged answer.
ticks$H <- (ticks$HEIGHT - mean(ticks$HEIGHT)) / sd(ticks$HEIGHT)
for (key in c("ticks_three_terms", "ticks_two_terms")) {
  scaled <- update(fits[[key]], . ~ . - HEIGHT + H)
  se <- sqrt(diag(as.matrix(vcov(scaled))))
  out[[paste0(key, "_standardised")]] <- list(
    logLik = as.numeric(logLik(scaled)),
    se = list(YEAR96 = unname(se["YEAR96"]), YEAR97 = unname(se["YEAR97"]),
              HEIGHT = unname(se["H"]) / sd(ticks$HEIGHT)))
}
ci <- confint(profile(lmer(y ~ x + (1|a) + (1|b), crossed, REML = FALSE), delta.cutoff = 1/50),
              oldNames = FALSE)
out$crossed_profile_confint <- list(names = rownames(ci), lower = unname(ci[, 1]),
                                    upper = unname(ci[, 2]))
cat(jsonlite::toJSON(c(list(lme4 = as.character(packageVersion("lme4")), R = R.version.string), out),
                     digits = I(12), auto_unbox = TRUE, pretty = TRUE))
