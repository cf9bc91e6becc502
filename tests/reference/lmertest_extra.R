# Reference values for fixed-effect tests (run: Rscript lmertest_extra.R > lmertest_extra.json).
# Also Nakagawa's R2 and the ICC (performance::r2_nakagawa, performance::icc).
# Debian packages r-base-core, r-cran-lme4, r-cran-lmertest, r-cran-pbkrtest,
# r-cran-performance; R 4.2.2, lme4 1.1-31, lmerTest 3.1-3, pbkrtest 0.5.2, performance 0.10.2.
# The data are the package's CSVs.
suppressMessages({library(lmerTest); library(pbkrtest); library(performance)})
data_dir <- "../../glmm_bayes/datasets/"
read <- function(name) {
  d <- read.csv(paste0(data_dir, name, ".csv"))
  for (f in names(d)) if (is.character(d[[f]])) d[[f]] <- factor(d[[f]])
  d
}
sleep <- read("sleepstudy"); sleep$Subject <- factor(sleep$Subject)
fits <- list(
  sleep_rs_reml = lmer(Reaction ~ Days + (Days|Subject), sleep),
  sleep_rs_ml = lmer(Reaction ~ Days + (Days|Subject), sleep, REML = FALSE),
  pulp_reml = lmer(bright ~ 1 + (1|operator), read("pulp")),
  penicillin_reml = lmer(yield ~ treat + (1|blend), read("penicillin")),
  irrigation_reml = lmer(yield ~ irrigation*variety + (1|field), read("irrigation")))
coef_table <- function(m, ddf) {
  s <- coef(summary(m, ddf = ddf))
  list(names = rownames(s), estimate = unname(s[, 1]), se = unname(s[, 2]), df = unname(s[, 3]),
       t = unname(s[, 4]), p = unname(s[, 5]))
}
anova_table <- function(m, ddf, type) {
  a <- anova(m, ddf = ddf, type = type)
  list(terms = rownames(a), F = unname(a[["F value"]]), NumDF = unname(a[["NumDF"]]),
       DenDF = unname(a[["DenDF"]]), p = unname(a[["Pr(>F)"]]))
}
out <- lapply(fits, function(m) {
  res <- list(satterthwaite = coef_table(m, "Satterthwaite"))
  if (isREML(m)) res$kenward_roger <- coef_table(m, "Kenward-Roger")
  if (length(fixef(m)) > 1) {
    res$anova_satterthwaite_3 <- anova_table(m, "Satterthwaite", 3)
    res$anova_satterthwaite_1 <- anova_table(m, "Satterthwaite", 1)
    if (isREML(m)) res$anova_kenward_roger_3 <- anova_table(m, "Kenward-Roger", 3)
  }
  res
})
# the contrast RR - WW style: a linear hypothesis L beta with Satterthwaite df
pen <- fits$penicillin_reml
L <- matrix(c(0, 1, -1, 0), nrow = 1)
ct <- contest(pen, L, joint = FALSE, ddf = "Satterthwaite")
out$penicillin_contrast_B_minus_C <- list(L = c(L), estimate = ct$Estimate, se = ct[["Std. Error"]],
                                          df = ct$df, t = ct[["t value"]], p = ct[["Pr(>|t|)"]])
ctsib <- read("ctsib"); ctsib$stable <- as.numeric(ctsib$CTSIB == 1)
r2_fits <- list(
  sleep_rs_reml = fits$sleep_rs_reml, penicillin_reml = fits$penicillin_reml,
  ctsib_laplace = glmer(stable ~ Sex + Age + Height + Weight + Surface + Vision + (1|Subject),
                        ctsib, family = binomial))
r2_icc <- lapply(r2_fits, function(m) {
  r2 <- r2_nakagawa(m); i <- icc(m)
  list(R2_marginal = unname(r2$R2_marginal), R2_conditional = unname(r2$R2_conditional),
       ICC_adjusted = i$ICC_adjusted, ICC_conditional = i$ICC_conditional)
})
out$r2_icc <- r2_icc
cat(jsonlite::toJSON(list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                          lmerTest = as.character(packageVersion("lmerTest")),
                          pbkrtest = as.character(packageVersion("pbkrtest")),
                          performance = as.character(packageVersion("performance")), fits = out),
                     digits = NA, auto_unbox = TRUE, pretty = TRUE))
