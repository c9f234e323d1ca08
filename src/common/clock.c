/* Clocks (see clock.h and vdx_now in vdx/common.h). */
#include "common/clock.h"

#include <sys/time.h>
#include <time.h>

#include "vdx/common.h"

double clock_epoch(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
}

void clock_utc_iso(double epoch, char out[32])
{
    time_t t = (time_t)epoch;
    struct tm tm;
    if (!gmtime_r(&t, &tm) || strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
        out[0] = 0;
}

void clock_utc_iso_now(char out[32]) { clock_utc_iso((double)time(NULL), out); }

double vdx_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}
