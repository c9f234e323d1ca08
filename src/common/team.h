/* OpenMP's team, shared: libgomp keeps one team of worker threads per calling thread, so
 * two request threads that each start a parallel region would put twice as many threads
 * on the cores as there are. Every parallel region outside the model's matrix engine
 * (the scan, the cross-validation's folds) claims the team first; a caller that finds it
 * taken runs on its own thread. */
#ifndef VDX_COMMON_TEAM_H
#define VDX_COMMON_TEAM_H

/* The threads the caller may use: `want` when the team is free (the caller then owns it
 * until team_release), 1 when it is taken or want <= 1. */
int team_claim(int want);
/* Gives the team back after a claim that returned more than 1 (nothing otherwise). */
void team_release(int claimed);

/* Makes OpenBLAS run every call on its calling thread (once per process; cheap after).
 * Debian links vdx with OpenBLAS's pthreads build, whose own worker threads know nothing
 * of OpenMP's: a GEMM called from inside a parallel region (the index's row blocks)
 * would put both pools on the same cores, and calls from two threads at once queue on
 * its lock. vdx splits such work over OpenMP's team itself. */
void team_serial_blas(void);

#endif
