/* Ingest progress for people and for the server. On a terminal: one line rewritten in
 * place (done/total, percentage, images/s, ETA, failures), at most five times a second.
 * Elsewhere (logs, CI): a plain line every few seconds. Either way progress.json in the
 * collection directory is replaced atomically at most once a second, and a last time
 * with the final state, so `vdx serve` can show an ingest running in another process. */
#include <cjson/cJSON.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "vdx/ingest.h"

struct vdx_progress {
    FILE *out;
    int is_tty;
    double interval_s;
    char *json_path;
    double started_epoch;
    double last_print, last_json;
    int printed_tty_line;
};

static double epoch_now(void)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (double)tv.tv_sec + (double)tv.tv_usec * 1e-6;
}

static void iso_time(double epoch, char *out, size_t size)
{
    time_t t = (time_t)epoch;
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

vdx_progress *vdx_progress_new(FILE *out, int is_tty, double interval_s, const char *json_path)
{
    vdx_progress *p = calloc(1, sizeof *p);
    if (!p)
        return NULL;
    p->out = out;
    p->is_tty = is_tty;
    p->interval_s = interval_s > 0 ? interval_s : 5.0;
    if (json_path && !(p->json_path = strdup(json_path))) {
        free(p);
        return NULL;
    }
    p->started_epoch = epoch_now();
    p->last_print = p->last_json = -1e9;
    return p;
}

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

char *vdx_progress_json(const vdx_ingest_stats *s, const char *state, double started_epoch,
                        double updated_epoch, long pid)
{
    char started[32], updated[32];
    iso_time(started_epoch, started, sizeof started);
    iso_time(updated_epoch, updated, sizeof updated);
    cJSON *o = cJSON_CreateObject();
    if (!o)
        return NULL;
    cJSON_AddStringToObject(o, "state", state);
    cJSON_AddNumberToObject(o, "done", (double)s->done);
    cJSON_AddNumberToObject(o, "total", (double)s->total);
    cJSON_AddNumberToObject(o, "failed", (double)s->failed);
    cJSON_AddNumberToObject(o, "stored", (double)s->stored);
    cJSON_AddNumberToObject(o, "skipped", (double)s->skipped);
    cJSON_AddNumberToObject(o, "rate", (double)(long)(s->rate * 100.0 + 0.5) / 100.0);
    if (s->eta_s >= 0)
        cJSON_AddNumberToObject(o, "eta_s", (double)(long)(s->eta_s + 0.5));
    else
        cJSON_AddNullToObject(o, "eta_s");
    cJSON_AddStringToObject(o, "started", started);
    cJSON_AddStringToObject(o, "updated", updated);
    cJSON_AddNumberToObject(o, "pid", (double)pid);
    char *text = cJSON_PrintUnformatted(o);
    cJSON_Delete(o);
    return text;
}

static void write_json(vdx_progress *p, const vdx_ingest_stats *s, const char *state)
{
    if (!p->json_path)
        return;
    char *text = vdx_progress_json(s, state, p->started_epoch, epoch_now(), (long)getpid());
    if (!text)
        return;
    vdx_error err;
    if (vdx_write_file_atomic(p->json_path, text, strlen(text), &err) != 0 && p->out)
        fprintf(p->out, "%svdx: cannot write progress: %s\n", p->printed_tty_line ? "\n" : "",
                err.message);
    free(text);
}

void vdx_progress_update(vdx_progress *p, const vdx_ingest_stats *s)
{
    double now = vdx_now();
    if (now - p->last_json >= 1.0) {
        write_json(p, s, "running");
        p->last_json = now;
    }
    if (!p->out || now - p->last_print < (p->is_tty ? 0.2 : p->interval_s))
        return;
    p->last_print = now;
    char line[256];
    format_line(s, line, sizeof line);
    if (p->is_tty) {
        fprintf(p->out, "\r\033[K%s", line);
        p->printed_tty_line = 1;
    } else
        fprintf(p->out, "%s\n", line);
    fflush(p->out);
}

void vdx_progress_finish(vdx_progress *p, const vdx_ingest_stats *s, const char *state)
{
    write_json(p, s, state);
    if (!p->out)
        return;
    char line[256];
    format_line(s, line, sizeof line);
    if (p->is_tty)
        fprintf(p->out, "\r\033[K%s\n", line);
    else if (s->total > 0)
        fprintf(p->out, "%s\n", line);
    p->printed_tty_line = 0;
    fflush(p->out);
}

void vdx_progress_free(vdx_progress *p)
{
    if (!p)
        return;
    free(p->json_path);
    free(p);
}

void vdx_progress_summary(FILE *out, const vdx_ingest_report *r)
{
    const vdx_ingest_stats *s = &r->stats;
    char took[32];
    format_duration(s->elapsed_s, took, sizeof took);
    fprintf(out, "%s: %ld ingested, %ld failed, %ld skipped (already in the collection",
            r->stopped ? "stopped" : "done", s->stored, s->failed, s->skipped);
    if (s->skipped_failed)
        fprintf(out, "; %ld of them failed before: --retry-failed tries them again",
                s->skipped_failed);
    fprintf(out, "), %ld source rows rejected, in %s (%.1f img/s)\n", s->rejected, took,
            s->elapsed_s > 0 ? (double)s->done / s->elapsed_s : 0.0);
    for (int i = 0; i < r->n_reasons; i++)
        fprintf(out, "  failed: %ld x %s\n", r->reasons[i].count, r->reasons[i].reason);
}
