# RLRsim's exact (restricted) likelihood-ratio tests of one variance component (issue 31;
# run: Rscript rlrsim_extra.R > rlrsim_extra.json). Debian packages r-base-core, r-cran-lme4,
# r-cran-rlrsim; R 4.2.2, lme4 1.1-31, RLRsim 3.1-8. The statistics are deterministic; the
# p-values are Monte Carlo estimates from 1e6 simulations (sd <= 5e-4), and the quantiles of
# the simulated null distributions let a test compare whole distributions, not one tail.
suppressMessages({library(lme4); library(RLRsim)})
data_dir <- "../../glmm_bayes/datasets/"
irrigation <- read.csv(paste0(data_dir, "irrigation.csv"))
pulp <- read.csv(paste0(data_dir, "pulp.csv"))
probs <- c(0.5, 0.75, 0.9, 0.95, 0.99)
summarise <- function(test, null) {
  list(statistic = unname(test$statistic), p_value = test$p.value,
       quantiles = unname(quantile(null, probs)), at_zero = mean(null == 0))
}
set.seed(1)
m <- lmer(yield ~ irrigation * variety + (1 | field), irrigation)
rlrt_irrigation <- exactRLRT(m, nsim = 1e6)
m <- lmer(bright ~ 1 + (1 | operator), pulp)
rlrt_pulp <- exactRLRT(m, nsim = 1e6)
m_ml <- lmer(bright ~ 1 + (1 | operator), pulp, REML = FALSE)
lrt_pulp <- exactLRT(m_ml, lm(bright ~ 1, pulp), nsim = 1e6)
cat(jsonlite::toJSON(list(
  lme4 = as.character(packageVersion("lme4")), RLRsim = as.character(packageVersion("RLRsim")),
  R = R.version.string, probs = probs,
  rlrt_irrigation = summarise(rlrt_irrigation, rlrt_irrigation$sample),
  rlrt_pulp = summarise(rlrt_pulp, rlrt_pulp$sample),
  lrt_pulp = summarise(lrt_pulp, lrt_pulp$sample)),
  digits = I(10), auto_unbox = TRUE, pretty = TRUE))
