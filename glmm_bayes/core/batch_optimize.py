"""Many minimisations of one JAX objective at once: one per response, same design.

A batch job refits one design to D responses. Fitted one by one, each of a small model's
~25 objective evaluations is a dispatch and a wait (~0.2 ms for sleepstudy's REML criterion,
whose arithmetic takes ~0.03 ms). `minimize_batch` instead runs BFGS with a backtracking
(Armijo) line search for every response side by side in NumPy, and evaluates the objective and
its gradient at the trial points of all responses still searching in one program call per
round (per core on a CPU: `Evaluator`). It works in the scaled coordinates
z = (x - x0) / scale of `minimize_jax`; a non-finite value rejects a trial point as the line
search backs off.

`settle_batch` adds each end point's Hessian (central differences of the gradient, as
`hessian_fd`, D points per call) and keeps an end point only where the single fit's search
would stop there too: finite, within the iteration cap, off the edge (no restart_edge) and
passing `optimum_problem` (no rescaled search). The caller fits the others one by one, so a
batch returns what the single fits return, to the optimisers' tolerance.
"""

from __future__ import annotations

import jax
import numpy as np

from ..control import Control
from ..cpu_devices import run_side_by_side, thread_count
from ..progress import progress_bar
from .checks import Search, free_coordinates, optimum_problem
from .compiled import bind, compiled
from .optimize import EDGE, OptSummary

#: Armijo's sufficient decrease, and how often a line search halves its step before it stops.
ARMIJO, BACKTRACKS = 1e-4, 60


def _at_response(x, response, args, objective):
    """objective(x, arrays with this response, *rest), args = (arrays, *rest); the response is
    (y on the family's location scale, its log_norm), as `structure.with_response` holds it."""
    arrays, *rest = args
    y, log_norm = response
    return objective(x, arrays._replace(y=y, log_norm=log_norm), *rest)


def responses_of(family, trials, responses: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(y, log_norm), each (D, n): the responses as `structure.with_response` holds one."""
    responses = np.asarray(responses, dtype=float)
    trials = np.asarray(trials, dtype=float)
    return (
        np.stack([family.on_location_scale(y) for y in responses]),
        np.stack([family.log_norm(y, trials) for y in responses]),
    )


def loops_over_rows() -> bool:
    """Whether the rows of a batch run as a loop (on a CPU, where that is as fast as vmap and
    compiles faster) rather than vectorised (on an accelerator)."""
    return jax.default_backend() == "cpu"


class Evaluator:
    """Value and gradient (x's coordinates) of the objective at D points, one per response,
    in calls of a program compiled once per model shape and piece size: on one CPU device the
    rows split into a piece per core, run side by side from threads (`cpu_devices.thread_count`,
    which `loop_elements` bounds as for NUTS); only the rows asked for are evaluated (zeros
    elsewhere). On a CPU the pieces are padded to a power of two rows, which the loop skips, so
    batches of other sizes mostly reuse a compiled program; an accelerator, which would compute
    the padding, runs the D rows as they are."""

    def __init__(self, objective, responses, args, loop_elements: int = 0):
        loops = loops_over_rows()
        self.program = compiled(
            bind(_at_response, objective=objective),
            "value_and_grad_loop" if loops else "value_and_grad_vmap",
        )
        D = len(responses[0])
        self.threads = thread_count(D, loop_elements=loop_elements) if loops else 1
        # the rows of each thread's piece: a near-equal share, padded by repeating its last row
        shares = np.array_split(np.arange(D), self.threads)
        piece = 1 << (len(shares[0]) - 1).bit_length() if loops else D
        self.index = np.concatenate(
            [np.pad(rows, (0, piece - len(rows)), "edge") for rows in shares]
        )
        self.real = np.concatenate([np.arange(piece) < len(rows) for rows in shares])
        self.responses = tuple(np.asarray(r)[self.index] for r in responses)
        self.args = args

    def __call__(self, x: np.ndarray, rows: np.ndarray | None = None):
        asked = self.real & (True if rows is None else np.asarray(rows)[self.index])
        x = np.asarray(x)[self.index]
        pieces = [
            (x[at], tuple(r[at] for r in self.responses), asked[at])
            for at in np.array_split(np.arange(len(x)), self.threads)
        ]
        executable = self.program.executable(pieces[0][0], pieces[0][1], self.args, pieces[0][2])

        def one(piece):
            x_piece, responses, asked_piece = piece
            value, grad = executable(x_piece, responses, self.args, asked_piece)
            return np.asarray(value, dtype=np.float64), np.asarray(grad, dtype=np.float64)

        values, grads = zip(*run_side_by_side(one, pieces, self.threads))
        return np.concatenate(values)[self.real], np.concatenate(grads)[self.real]


def minimize_batch(
    evaluate: Evaluator,
    x0: np.ndarray,
    scale: np.ndarray,
    max_iter: int = 2000,
    gtol: float = 1e-9,
    ftol: float = 1e-15,
    progress: bool = False,
) -> list[OptSummary]:
    """BFGS from each row of x0 (D, k), all rows in lockstep, in the units `scale` ((k,) or a
    row per response); the stopping rules are `minimize_jax`'s (a scaled gradient below gtol,
    or a relative decrease below ftol). `progress` shows the searches that have ended."""
    D, k = x0.shape
    scale = np.broadcast_to(scale, x0.shape)

    def value_and_grad(z, rows=None):
        value, grad = evaluate(x0 + scale * z, rows)
        grad = grad * scale
        finite = np.isfinite(value) & np.all(np.isfinite(grad), axis=1)
        return np.where(finite, value, np.inf), np.where(finite[:, None], grad, 0.0), finite

    z = np.zeros((D, k))
    f, g, running = value_and_grad(z)
    inverse_hessian = np.tile(np.eye(k), (D, 1, 1))
    direction = -g
    alpha = np.minimum(1.0, 1.0 / np.maximum(np.linalg.norm(g, axis=1), 1e-300))
    n_iter, n_evals, backtracks = np.zeros(D, int), np.ones(D, int), np.zeros(D, int)
    message = np.where(running, "", "the objective is not finite at the start").astype(object)
    success = np.zeros(D, bool)
    bar = progress_bar(total=D, desc="searches", disable=not progress)
    bar.update(int(np.sum(~running)))
    while running.any():
        trial = np.where(running[:, None], z + alpha[:, None] * direction, z)
        f_trial, g_trial, finite = value_and_grad(trial, running)
        n_evals += running
        slope = np.einsum("dk,dk->d", g, direction)
        accept = running & finite & (f_trial <= f + ARMIJO * alpha * slope)
        # BFGS's update of the inverse Hessian where the step shows positive curvature
        s, y = trial - z, g_trial - g
        sy = np.einsum("dk,dk->d", s, y)
        update = accept & (sy > 1e-12 * np.linalg.norm(s, axis=1) * np.linalg.norm(y, axis=1))
        if update.any():
            first = update & (n_iter == 0)  # scale the identity to the curvature seen
            yy = np.einsum("dk,dk->d", y, y)
            inverse_hessian[first] *= (sy[first] / yy[first])[:, None, None]
            rho = np.where(update, 1.0 / np.where(update, sy, 1.0), 0.0)
            left = np.eye(k) - rho[:, None, None] * s[:, :, None] * y[:, None, :]
            inverse_hessian = np.einsum("dij,djk,dlk->dil", left, inverse_hessian, left) + (
                rho[:, None, None] * s[:, :, None] * s[:, None, :]
            )
        decrease = f - f_trial
        z = np.where(accept[:, None], trial, z)
        f_before, f = f, np.where(accept, f_trial, f)
        g = np.where(accept[:, None], g_trial, g)
        n_iter += accept
        backtracks = np.where(accept, 0, backtracks + running)
        small_gradient = accept & (np.max(np.abs(g), axis=1) <= gtol)
        small_decrease = accept & (
            decrease <= ftol * np.maximum(np.maximum(np.abs(f_before), np.abs(f)), 1.0)
        )
        capped = accept & (n_iter >= max_iter)
        stalled = running & ~accept & (backtracks >= BACKTRACKS)
        message[small_gradient] = "converged: the scaled gradient is below gtol"
        message[small_decrease & ~small_gradient] = "converged: relative reduction below ftol"
        message[capped & ~(small_gradient | small_decrease)] = "stopped at the iteration cap"
        message[stalled] = "the line search found no decrease"
        success |= small_gradient | small_decrease
        ended = small_gradient | small_decrease | capped | stalled
        bar.update(int(np.sum(ended)))
        running &= ~ended
        # the next step: a new direction after an accepted one, half the step after a rejection
        alpha = np.where(accept, 1.0, 0.5 * alpha)
        new = accept & running
        direction[new] = -np.einsum("dij,dj->di", inverse_hessian[new], g[new])
        uphill = new & (np.einsum("dk,dk->d", direction, g) >= 0)
        inverse_hessian[uphill] = np.eye(k)
        direction[uphill] = -g[uphill]
    bar.close()
    x = x0 + scale * z
    return [
        OptSummary(
            "BFGS (batched)",
            x0[d],
            x[d],
            float(f[d]),
            g[d] / scale[d],
            scale[d],
            int(n_evals[d]),
            int(n_iter[d]),
            max_iter,
            str(message[d]),
            bool(success[d]),
        )
        for d in range(D)
    ]


def hessian_batch(
    evaluate: Evaluator, x: np.ndarray, scale: np.ndarray, rows: np.ndarray, step: float = 1e-5
) -> np.ndarray:
    """The Hessian (D, k, k) of each row in `rows` (zeros elsewhere) by central differences of
    the gradient, `hessian_fd`'s steps (`scale` (k,) or (D, k)); rows that meet a non-finite
    gradient come back non-finite."""
    D, k = x.shape
    scale = np.broadcast_to(scale, x.shape)
    H = np.zeros((D, k, k))
    for j in range(k):
        h = step * np.maximum(scale[:, j], np.abs(x[:, j]))
        e = np.zeros((D, k))
        e[:, j] = h
        H[:, :, j] = (evaluate(x + e, rows)[1] - evaluate(x - e, rows)[1]) / (2 * h[:, None])
    return 0.5 * (H + np.swapaxes(H, 1, 2))


def settle_batch(
    search: Search,
    responses: tuple[np.ndarray, np.ndarray],
    args: tuple,
    control: Control,
    loop_elements: int = 0,
    progress: bool = False,
    starts: np.ndarray | None = None,
    scales: np.ndarray | None = None,
) -> list[tuple[OptSummary, np.ndarray] | None]:
    """(end point, Hessian) of each response's `search`, from its row of `starts` in its row of
    `scales` ((D, k); by default every response's from search.x0 in search.scale), or None
    where the single fit's search would go on from there (`optimize_and_settle`: a restart off
    the edge, a search in the curvature's units) or refuse it: the caller fits those one by
    one. `loop_elements`: the model's `row_elements` (`cpu_devices.thread_count`); `progress`
    shows the searches that have ended."""
    D = len(responses[0])
    x0 = np.tile(search.x0, (D, 1)) if starts is None else starts
    scale = search.scale if scales is None else scales
    names, edge = search.names, search.edge
    evaluate = Evaluator(search.objective, responses, args, loop_elements)
    opts = minimize_batch(evaluate, x0, scale, control.max_iter, progress=progress)
    x = np.array([opt.x for opt in opts])
    candidates = np.array(
        [
            np.isfinite(opt.fun)
            and opt.n_iter < opt.max_iter
            and not np.any(edge & (np.abs(opt.x / opt.scale) < EDGE))
            for opt in opts
        ]
    )
    hessians = hessian_batch(evaluate, np.where(candidates[:, None], x, x0), scale, candidates)
    return [
        (opt, H)
        if candidate
        and np.all(np.isfinite(H))
        and optimum_problem(opt, H, names, control, free_coordinates(opt.x, edge, control)) is None
        else None
        for opt, H, candidate in zip(opts, hessians, candidates)
    ]
