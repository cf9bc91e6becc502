# lme4's (and nlme's) fits of the worked examples (run: Rscript lme4_seed.R > lme4_seed.json).
# Debian packages r-base-core, r-cran-lme4, r-cran-nlme, r-cran-jsonlite; the data are the
# package's CSVs. See README.md beside this file for what each entry holds.
suppressMessages({library(lme4); library(nlme)})
data_dir <- "../../glmm_bayes/datasets/"
read <- function(name, factors = character()) {
  d <- read.csv(paste0(data_dir, name, ".csv"))
  for (f in factors) d[[f]] <- factor(d[[f]])
  d
}

varcorr_rows <- function(m) {
  vc <- as.data.frame(VarCorr(m))
  lapply(seq_len(nrow(vc)), function(i) {
    row <- list(grp = vc$grp[i])
    if (!is.na(vc$var1[i])) row$var1 <- vc$var1[i]
    if (!is.na(vc$var2[i])) row$var2 <- vc$var2[i]
    c(row, list(vcov = vc$vcov[i], sdcor = vc$sdcor[i]))
  })
}

# conditional modes and their conditional sds, per grouping factor, in level order
modes <- function(m) {
  re <- as.data.frame(ranef(m, condVar = TRUE))
  factors <- unique(as.character(re$grpvar))
  setNames(lapply(factors, function(f) {
    part <- re[re$grpvar == f, ]
    terms <- unique(as.character(part$term))
    pick <- function(column) setNames(lapply(terms, function(t) part[[column]][part$term == t]), terms)
    list(levels = as.character(part$grp[part$term == terms[1]]), terms = terms,
         values = pick("condval"), cond_sd = pick("condsd"))
  }), factors)
}

describe <- function(name, data, formula, family, method, m, ranef = TRUE, extra = list()) {
  out <- list(name = name, data = data, formula = formula, family = family, method = method,
              fixef = as.list(fixef(m)), se = as.list(sqrt(diag(vcov(m)))),
              varcorr = varcorr_rows(m), sigma = sigma(m), logLik = as.numeric(logLik(m)),
              AIC = AIC(m), BIC = BIC(m), deviance = if (isREML(m)) NULL else deviance(m),
              REMLcrit = if (isREML(m)) REMLcrit(m) else NULL, nobs = nobs(m),
              ngrps = as.list(ngrps(m)), singular = isSingular(m))
  if (ranef) out$ranef <- modes(m)
  c(out, extra)
}

sleep <- read("sleepstudy", "Subject")
rikz <- read("RIKZ", "Beach")
penicillin <- read("penicillin", "blend")
ctsib <- read("ctsib", "Subject")
ctsib$stable <- as.numeric(ctsib$CTSIB == 1)
lmm <- function(name, data, formula, frame, REML = TRUE)
  describe(name, data, formula, "gaussian", if (REML) "REML" else "ML",
           lmer(as.formula(formula), frame, REML = REML))
glmm <- function(name, data, formula, frame, family, nAGQ = 1, extra = list()) {
  m <- glmer(as.formula(formula), frame, nAGQ = nAGQ,
             family = if (family == "poisson") poisson else binomial)
  describe(name, data, formula, family, "Laplace", m,
           extra = c(if (nAGQ > 1) list(nAGQ = nAGQ), extra))
}

fits <- list(
  lmm("sleep_ri_reml", "sleepstudy", "Reaction ~ Days + (1|Subject)", sleep),
  lmm("sleep_ri_ml", "sleepstudy", "Reaction ~ Days + (1|Subject)", sleep, REML = FALSE),
  lmm("sleep_rs_reml", "sleepstudy", "Reaction ~ Days + (Days|Subject)", sleep),
  lmm("sleep_rs_ml", "sleepstudy", "Reaction ~ Days + (Days|Subject)", sleep, REML = FALSE),
  lmm("sleep_uncorr_reml", "sleepstudy", "Reaction ~ Days + (Days||Subject)", sleep),
  lmm("dyestuff_reml", "Dyestuff", "Yield ~ 1 + (1|Batch)", read("Dyestuff", "Batch")),
  lmm("penicillin_reml", "penicillin", "yield ~ treat + (1|blend)", penicillin),
  lmm("pulp_reml", "pulp", "bright ~ 1 + (1|operator)", read("pulp", "operator")),
  lmm("irrigation_reml", "irrigation", "yield ~ irrigation*variety + (1|field)",
      read("irrigation", "field")),
  glmm("rikz_poisson_laplace", "RIKZ", "Richness ~ NAP + (1|Beach)", rikz, "poisson"),
  glmm("rikz_poisson_agq10", "RIKZ", "Richness ~ NAP + (1|Beach)", rikz, "poisson", nAGQ = 10),
  glmm("salamander_laplace", "salamander", "Mate ~ 0 + Cross + (1|Female) + (1|Male)",
       read("salamander", c("Female", "Male")), "bernoulli"),
  glmm("ctsib_laplace", "ctsib",
       "stable ~ Sex + Age + Height + Weight + Surface + Vision + (1|Subject)", ctsib,
       "bernoulli", extra = list(note = "stable = (CTSIB == 1)")))
names(fits) <- vapply(fits, function(f) f$name, "")

# the likelihood-ratio test of treat, both models by ML (anova refits REML fits by ML)
full <- lmer(yield ~ treat + (1|blend), penicillin, REML = FALSE)
null <- lmer(yield ~ 1 + (1|blend), penicillin, REML = FALSE)
test <- anova(null, full)
fits$penicillin_lrt <- list(name = "penicillin_lrt", full = "yield ~ treat + (1|blend)",
                            null = "yield ~ 1 + (1|blend)", method = "ML",
                            chisq = test$Chisq[2], df = test$Df[2], p = test[["Pr(>Chisq)"]][2],
                            logLik_full = as.numeric(logLik(full)),
                            logLik_null = as.numeric(logLik(null)),
                            AIC = test$AIC, BIC = test$BIC)

# nlme: a diagonal random-effect covariance and AR(1) residual correlation within Mare
ovary <- read("Ovary", "Mare")
ar1 <- lme(follicles ~ sin(2*pi*Time) + cos(2*pi*Time), ovary,
           random = list(Mare = pdDiag(~ sin(2*pi*Time))),
           correlation = corAR1(form = ~ 1 | Mare), method = "REML")
fits$ovary_ar1_reml <- list(
  name = "ovary_ar1_reml", data = "Ovary",
  formula = paste("follicles ~ sin(2*pi*Time) + cos(2*pi*Time) +",
                  "(1 + sin(2*pi*Time) || Mare), residual AR(1) within Mare"),
  method = "REML", fixef = as.list(fixef(ar1)), se = as.list(sqrt(diag(vcov(ar1)))),
  phi = unname(coef(ar1$modelStruct$corStruct, unconstrained = FALSE)),
  sd = unname(as.numeric(VarCorr(ar1)[, "StdDev"])),
  logLik = as.numeric(logLik(ar1)), AIC = AIC(ar1), BIC = BIC(ar1))

# InstEval: the large crossed design, with lme4's wall time on this machine
insteval <- read("InstEval", c("s", "d", "studage", "lectage", "service", "dept"))
formula <- "y ~ service + lectage + studage + (1|s) + (1|d) + (1|dept:service)"
seconds <- system.time(big <- lmer(as.formula(formula), insteval))[["elapsed"]]
fits$insteval_reml <- describe("insteval_reml", "InstEval", formula, "gaussian", "REML", big,
                               ranef = FALSE, extra = list(
  lme4_seconds = seconds, note = "lme4_seconds measured on a 2-core machine of this project's kind"))
fits$insteval_reml[c("deviance", "REMLcrit")] <- NULL

cat(jsonlite::toJSON(fits, digits = I(11), auto_unbox = TRUE, pretty = TRUE, null = "null"))
