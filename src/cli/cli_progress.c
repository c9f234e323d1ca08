/* How `vdx ingest` shows its progress (the library reports vdx_ingest_stats and writes
 * progress.json; the tool draws). On a terminal: one line rewritten in place (done/total,
 * percentage, images/s, ETA, failures), at most five times a second. Elsewhere (logs,
 * CI): a plain line every few seconds. At the end, a summary on stdout. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"

static void format_duration(double s, char *out, size_t size)
{
    if (s < 0) {
        snprintf(out, size, "?");
        return;
    }
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(out, size, "%ldh%02ldm", t / 3600, (t / 60) % 60);
    else if (t >= 60)
        snprintf(out, size, "%ldm%02lds", t / 60, t % 60);
    else
        snprintf(out, size, "%lds", t);
}

static void format_line(const vdx_ingest_stats *s, char *out, size_t size)
{
    char eta[32];
    format_duration(s->eta_s, eta, sizeof eta);
    double pct = s->total > 0 ? 100.0 * (double)s->done / (double)s->total : 100.0;
    int n = snprintf(out, size, "ingest: %ld/%ld (%.1f%%)  %.1f img/s  ETA %s  failed %ld",
                     s->done, s->total, pct, s->rate, eta, s->failed);
    if (s->skipped > 0 && n > 0 && (size_t)n < size)
        snprintf(out + n, size - (size_t)n, "  (%ld already stored)", s->skipped);
}

/* progress.json could not be written: said once, the ingest goes on. */
static void file_failed(cli_progress *p, const vdx_error *err)
{
    if (p->file_warned)
        return;
    p->file_warned = 1;
    fprintf(p->out, "%svdx: cannot write progress: %s\n", p->printed_tty_line ? "\n" : "",
            err->message);
    p->printed_tty_line = 0;
}

void cli_progress_update(cli_progress *p, const vdx_ingest_stats *s)
{
    vdx_error err = {{0}};
    if (p->file && vdx_progress_update(p->file, s, &err) != 0)
        file_failed(p, &err);
    double now = vdx_now();
    if (now - p->last_print < (p->tty ? 0.2 : p->interval_s))
        return;
    p->last_print = now;
    char line[256];
    format_line(s, line, sizeof line);
    if (p->tty) {
        fprintf(p->out, "\r\033[K%s", line);
        p->printed_tty_line = 1;
    } else {
        fprintf(p->out, "%s\n", line);
        snprintf(p->last_line, sizeof p->last_line, "%s", line);
    }
    fflush(p->out);
}

void cli_progress_finish(cli_progress *p, const vdx_ingest_stats *s, const char *state)
{
    vdx_error err = {{0}};
    if (p->file && vdx_progress_finish(p->file, s, state, &err) != 0)
        file_failed(p, &err);
    char line[256];
    format_line(s, line, sizeof line);
    if (p->tty)
        fprintf(p->out, "\r\033[K%s\n", line);
    else if (s->total > 0 && strcmp(line, p->last_line) != 0)
        fprintf(p->out, "%s\n", line);
    p->printed_tty_line = 0;
    fflush(p->out);
}

void cli_ingest_summary(FILE *out, const vdx_ingest_report *r, int failed)
{
    const vdx_ingest_stats *s = &r->stats;
    char took[32];
    format_duration(s->elapsed_s, took, sizeof took);
    fprintf(out, "%s: %ld ingested, %ld failed, %ld skipped (already in the collection",
            failed ? "aborted" : r->stopped ? "stopped" : "done", s->stored, s->failed,
            s->skipped);
    if (s->skipped_failed)
        fprintf(out, "; %ld of them failed before: --retry-failed tries them again",
                s->skipped_failed);
    fprintf(out, "), %ld source rows rejected, in %s (%.1f img/s)\n", s->rejected, took,
            s->elapsed_s > 0 ? (double)s->done / s->elapsed_s : 0.0);
    for (int i = 0; i < r->n_reasons; i++)
        fprintf(out, "  failed: %ld x %s\n", r->reasons[i].count, r->reasons[i].reason);
}
