# lme4's Laplace fits of every family and link it shares with this package, on one simulated
# design (run: Rscript lme4_families.R > lme4_families.json). Debian packages r-base-core,
# r-cran-lme4; R 4.2.2, lme4 1.1-31. data/families_sim.csv is made by simulate_data.py.
suppressMessages(library(lme4))
d <- read.csv("data/families_sim.csv")
d$g <- factor(d$g)
tight <- glmerControl(tolPwrss = 1e-12, optCtrl = list(maxfun = 1e5))
summarise <- function(m) {
  list(fixef = as.list(fixef(m)), se = as.list(sqrt(diag(as.matrix(vcov(m))))),
       logLik = as.numeric(logLik(m)), sdcor = as.data.frame(VarCorr(m))$sdcor,
       singular = isSingular(m))
}
fits <- list(
  logit = glmer(logit ~ x + z + (1 | g), d, binomial, control = tight),
  probit = glmer(probit ~ x + z + (1 | g), d, binomial(link = "probit"), control = tight),
  cloglog = glmer(cloglog ~ x + z + (1 | g), d, binomial(link = "cloglog"), control = tight),
  binomial = glmer(cbind(k, fail) ~ x + z + (x || g), d, binomial, control = tight),
  poisson = glmer(counts ~ x + z + (x | g), d, poisson, control = tight),
  exposure = glmer(exposed ~ x + z + offset(log(t)) + (1 | g), d, poisson, control = tight),
  negbinomial = glmer.nb(nb ~ x + z + (1 | g), d, control = tight))
out <- lapply(fits, summarise)
out$negbinomial$shape <- getME(fits$negbinomial, "glmer.nb.theta")
cat(jsonlite::toJSON(c(list(lme4 = as.character(packageVersion("lme4")), R = R.version.string), out),
                     digits = I(12), auto_unbox = TRUE, pretty = TRUE))
