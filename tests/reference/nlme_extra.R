# Reference fits for residual correlation, variance functions and prior weights (issue 10).
# Rscript nlme_extra.R > nlme_extra.json   (R 4.2.2, nlme 3.1-162, lme4 1.1-31; run here)
suppressMessages({library(nlme); library(lme4); library(jsonlite)})

ovary <- read.csv("../../glmm_bayes/datasets/Ovary.csv")
ovary$Mare <- factor(ovary$Mare)
serial <- read.csv("data/serial_sim.csv")
serial$id <- factor(serial$id); serial$sex <- factor(serial$sex)
ctl <- lmeControl(maxIter = 200, msMaxIter = 200, tolerance = 1e-10, msTol = 1e-10,
                  niterEM = 50)

lme_entry <- function(fit, data, formula, correlation = "", variance = "") {
  cs <- c()
  if (!is.null(fit$modelStruct$corStruct)) cs <- c(cs, coef(fit$modelStruct$corStruct, unconstrained = FALSE))
  if (!is.null(fit$modelStruct$varStruct)) cs <- c(cs, coef(fit$modelStruct$varStruct, unconstrained = FALSE))
  vc <- suppressWarnings(as.numeric(VarCorr(fit)[, "StdDev"]))
  fe <- fixef(fit)
  list(data = data, formula = formula, correlation = correlation, variance = variance,
       method = fit$method, fixef = as.list(fe), se = as.list(sqrt(diag(vcov(fit)))),
       sd = vc, sigma = fit$sigma, params = as.list(cs),
       logLik = as.numeric(logLik(fit)), AIC = AIC(fit), BIC = BIC(fit))
}

out <- list()
ovary_re <- list(Mare = pdDiag(~ sin(2 * pi * Time)))
ovary_formula <- "follicles ~ sin(2*pi*Time) + cos(2*pi*Time) + (1 + sin(2*pi*Time) || Mare)"
for (method in c("REML", "ML")) {
  ar1 <- lme(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time), data = ovary, random = ovary_re,
             correlation = corAR1(form = ~ 1 | Mare), method = method, control = ctl)
  ind <- lme(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time), data = ovary, random = ovary_re,
             method = method, control = ctl)
  out[[paste0("ovary_ar1_", tolower(method))]] <- lme_entry(ar1, "Ovary", ovary_formula, "AR1(group='Mare')")
  out[[paste0("ovary_independent_", tolower(method))]] <- lme_entry(ind, "Ovary", ovary_formula)
}

fit_serial <- function(random, correlation = NULL, weights = NULL, method = "REML")
  lme(y ~ time + x, data = serial, random = random, correlation = correlation, weights = weights,
      method = method, control = ctl)
f1 <- "y ~ time + x + (1 | id)"
out$serial_car1_reml <- lme_entry(fit_serial(~ 1 | id, corCAR1(form = ~ time | id)), "serial_sim", f1,
                                  "CAR1(time='time', group='id')")
out$serial_car1_ml <- lme_entry(fit_serial(~ 1 | id, corCAR1(form = ~ time | id), method = "ML"),
                                "serial_sim", f1, "CAR1(time='time', group='id')")
out$serial_ar1_visit_reml <- lme_entry(fit_serial(~ 1 | id, corAR1(form = ~ visit | id)), "serial_sim",
                                       f1, "AR1(group='id', order='visit')")
out$ovary_gaussian_reml <- lme_entry(
  lme(follicles ~ sin(2 * pi * Time) + cos(2 * pi * Time), data = ovary, random = ovary_re,
      correlation = corGaus(form = ~ Time | Mare), control = ctl),
  "Ovary", ovary_formula, "GaussianCorrelation(time='Time', group='Mare')")
out$serial_cs_reml <- lme_entry(fit_serial(list(id = pdSymm(~ 0 + time)), corCompSymm(form = ~ 1 | id)),
                                "serial_sim", "y ~ time + x + (0 + time | id)",
                                "CompoundSymmetry(group='id')")
out$serial_varident_reml <- lme_entry(fit_serial(~ 1 | id, weights = varIdent(form = ~ 1 | sex)),
                                      "serial_sim", f1, "", "VarIdent(by='sex')")
out$serial_car1_varident_reml <- lme_entry(
  fit_serial(~ 1 | id, corCAR1(form = ~ time | id), varIdent(form = ~ 1 | sex)), "serial_sim", f1,
  "CAR1(time='time', group='id')", "VarIdent(by='sex')")
# prior weights: lme4's lmer(weights = w), residual variance sigma^2 / w
for (reml in c(TRUE, FALSE)) {
  m <- lmer(y ~ time + x + (1 | id), data = serial, weights = w, REML = reml)
  n <- lme(y ~ time + x, data = serial, random = ~ 1 | id, weights = varFixed(~ 1 / w),
           method = if (reml) "REML" else "ML", control = ctl)
  out[[paste0("serial_weights_", if (reml) "reml" else "ml")]] <- list(
    data = "serial_sim", formula = f1, weights = "w", method = if (reml) "REML" else "ML",
    fixef = as.list(fixef(m)), se = as.list(sqrt(diag(as.matrix(vcov(m))))),
    sd = c(as.data.frame(VarCorr(m))$sdcor), sigma = sigma(m), logLik = as.numeric(logLik(m)),
    nlme_logLik = as.numeric(logLik(n)))
}
# glm-style prior weights in a GLMM: each row's log-likelihood term counts w times
rikz <- read.csv("../../glmm_bayes/datasets/RIKZ.csv")
rikz$Beach <- factor(rikz$Beach)
rikz$w <- 1 + (rikz$Sample %% 3)
g <- glmer(Richness ~ NAP + (1 | Beach), data = rikz, family = poisson, weights = w,
           control = glmerControl(tolPwrss = 1e-13))
out$rikz_weights_laplace <- list(
  data = "RIKZ", formula = "Richness ~ NAP + (1 | Beach)", weights = "1 + Sample %% 3",
  method = "Laplace", fixef = as.list(fixef(g)), se = as.list(sqrt(diag(as.matrix(vcov(g))))),
  sd = c(as.data.frame(VarCorr(g))$sdcor), logLik = as.numeric(logLik(g)))
cat(toJSON(out, auto_unbox = TRUE, digits = NA, pretty = TRUE))
