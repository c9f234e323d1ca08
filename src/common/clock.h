/* Module-private (src/common): the one wall clock of the library and the one timestamp
 * format, ISO 8601 in UTC to the second ("2026-12-03T08:30:00Z"), used for ingest
 * times, concept events and rounds, and progress.json. (The monotonic clock for
 * durations is vdx_now() in vdx/common.h.) */
#ifndef VDX_COMMON_CLOCK_H
#define VDX_COMMON_CLOCK_H

/* Seconds since the Unix epoch, with microseconds. */
double clock_epoch(void);
/* epoch → "YYYY-MM-DDTHH:MM:SSZ" (20 characters and a NUL; out holds 32). */
void clock_utc_iso(double epoch, char out[32]);
/* The same for now. */
void clock_utc_iso_now(char out[32]);

#endif
