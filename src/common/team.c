/* The claim on OpenMP's team (team.h): one mutex, tried, never waited on. */
#include "common/team.h"

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
