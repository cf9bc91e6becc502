# lme4 idioms an R user brings (run: Rscript lme4_idioms.R > lme4_idioms.json). Debian packages
# r-base-core, r-cran-lme4, r-cran-jsonlite; R 4.2.2, lme4 1.1-31. Writes data/cbpp.csv, lme4's
# cbpp data (contagious bovine pleuropneumonia: incidence of size per herd and period).
suppressMessages(library(lme4))
data(cbpp, package = "lme4")
write.csv(cbpp, "data/cbpp.csv", row.names = FALSE)
cbpp$proportion <- cbpp$incidence / cbpp$size
tight <- glmerControl(tolPwrss = 1e-12, optCtrl = list(maxfun = 1e5))
summarise <- function(m) {
  list(fixef = as.list(fixef(m)), se = as.list(sqrt(diag(as.matrix(vcov(m))))),
       logLik = as.numeric(logLik(m)), sdcor = as.data.frame(VarCorr(m))$sdcor)
}
fits <- list(
  # a proportion with the trials as prior weights: glm's and glmer's binomial idiom
  proportion_weights = glmer(proportion ~ period + (1 | herd), cbpp, binomial, weights = size,
                             control = tight),
  successes_failures = glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp,
                             binomial, control = tight))
# nAGQ = 0: beta inside PIRLS, the Laplace deviance optimised over theta alone
salamander <- read.csv("../../glmm_bayes/datasets/salamander.csv")
rikz <- read.csv("../../glmm_bayes/datasets/RIKZ.csv")
rikz$Beach <- factor(rikz$Beach)
theta_of <- function(m) c(summarise(m), list(theta = unname(getME(m, "theta"))))
nagq0 <- list(
  nagq0_cbpp = glmer(cbind(incidence, size - incidence) ~ period + (1 | herd), cbpp, binomial,
                     nAGQ = 0, control = tight),
  nagq0_salamander = glmer(Mate ~ 0 + Cross + (1 | Female) + (1 | Male), salamander, binomial,
                           nAGQ = 0, control = tight),
  nagq0_rikz = glmer(Richness ~ NAP + (1 | Beach), rikz, poisson, nAGQ = 0, control = tight))
# bootMer's percentile intervals (confint(method = "boot"): parametric, new random effects)
sleep <- read.csv("../../glmm_bayes/datasets/sleepstudy.csv")
sleep$Subject <- factor(sleep$Subject)
ri <- lmer(Reaction ~ Days + (1 | Subject), sleep)
boot <- confint(ri, method = "boot", nsim = 1000, seed = 1, oldNames = FALSE)
boot_ci <- list(names = rownames(boot), lower = unname(boot[, 1]), upper = unname(boot[, 2]),
                nsim = 1000)
cat(jsonlite::toJSON(c(list(lme4 = as.character(packageVersion("lme4")), R = R.version.string),
                       lapply(fits, summarise), lapply(nagq0, theta_of),
                       list(sleep_ri_boot_confint = boot_ci)),
                     digits = I(12), auto_unbox = TRUE, pretty = TRUE))
