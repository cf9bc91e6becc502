# MASS::glmmPQL's penalised quasi-likelihood fits (issue 31; run: Rscript mass_pql.R >
# mass_pql.json). Debian packages r-base-core (MASS, nlme); R 4.2.2, MASS 7.3-58, nlme 3.1.
# glmmPQL iterates ML fits of a weighted LMM (nlme::lme, varFixed) to the working response
# from a glm start, at most 10 times, stopping once sum((eta - eta_old)^2) < 1e-6 sum(eta^2);
# the number of fits it made is recorded.
suppressMessages(library(MASS))
data_dir <- "../../glmm_bayes/datasets/"
ctsib <- read.csv(paste0(data_dir, "ctsib.csv"))
ctsib$stable <- as.integer(ctsib$CTSIB == 1)
rikz <- read.csv(paste0(data_dir, "RIKZ.csv"))
fit <- function(...) {
  messages <- character()
  m <- withCallingHandlers(glmmPQL(...), message = function(msg) {
    messages <<- c(messages, conditionMessage(msg)); invokeRestart("muffleMessage")
  })
  list(fixef = as.list(nlme::fixef(m)), se = as.list(sqrt(diag(vcov(m)))),
       sd = unname(sqrt(diag(as.matrix(nlme::getVarCov(m))))), sigma = m$sigma,
       fits = length(grep("iteration", messages)))
}
out <- list(
  ctsib = fit(stable ~ Sex + Age + Height + Weight + Surface + Vision, random = ~ 1 | Subject,
              family = binomial, data = ctsib),
  rikz = fit(Richness ~ NAP, random = ~ 1 | Beach, family = poisson, data = rikz))
cat(jsonlite::toJSON(c(list(MASS = as.character(packageVersion("MASS")),
                            nlme = as.character(packageVersion("nlme")), R = R.version.string), out),
                     digits = I(12), auto_unbox = TRUE, pretty = TRUE))
