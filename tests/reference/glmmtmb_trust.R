# glmmTMB's Laplace ML fits where lme4 has none (run: Rscript glmmtmb_trust.R > glmmtmb_trust.json).
# Debian packages r-base-core, r-cran-glmmtmb; R 4.2.2, glmmTMB 1.1.5. glmer does not make the
# Gamma shape a parameter of its Laplace likelihood (it takes the dispersion from the
# residuals), so its logLik and estimates differ from the Laplace ML ones; glmmTMB maximises the Laplace
# likelihood in (beta, sd, shape) jointly, as this package does.
suppressMessages(library(glmmTMB))
gamma <- read.csv("data/gamma_sim.csv")
gamma$g <- factor(gamma$g)
summarise <- function(m) {
  list(fixef = as.list(fixef(m)$cond), se = as.list(sqrt(diag(vcov(m)$cond))),
       sd = unname(sqrt(unlist(VarCorr(m)$cond))), shape = 1 / sigma(m)^2,
       logLik = as.numeric(logLik(m)))
}
# glmmTMB's own start (beta = 0) puts eta = 0, where the inverse link's mean is infinite
start <- list(beta = c(1, 0))
fits <- list(
  gamma_inverse = glmmTMB(y_inverse ~ x + (1 | g), gamma, family = Gamma(link = "inverse"), start = start),
  gamma_inverse_misspecified = glmmTMB(y_log ~ x + (1 | g), gamma, family = Gamma(link = "inverse"),
                                       start = start))
cat(jsonlite::toJSON(c(list(glmmTMB = as.character(packageVersion("glmmTMB")), R = R.version.string),
                       lapply(fits, summarise)), digits = I(12), auto_unbox = TRUE, pretty = TRUE))
