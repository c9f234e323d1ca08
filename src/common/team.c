/* The claim on OpenMP's team (team.h): one mutex, tried, never waited on; OpenBLAS kept
 * on its callers' threads. */
#include "common/team.h"

#include <cblas.h>
#include <pthread.h>

static pthread_mutex_t team_busy = PTHREAD_MUTEX_INITIALIZER;

int team_claim(int want)
{
    if (want <= 1 || pthread_mutex_trylock(&team_busy) != 0)
        return 1;
    return want;
}

void team_release(int claimed)
{
    if (claimed > 1)
        pthread_mutex_unlock(&team_busy);
}

static pthread_once_t blas_once = PTHREAD_ONCE_INIT;

static void blas_one_thread(void) { openblas_set_num_threads(1); }

void team_serial_blas(void) { pthread_once(&blas_once, blas_one_thread); }
